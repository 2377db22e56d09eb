"""The Salesforce API emulator and SOQL parser."""

"""The picklist values of the Salesforce sandbox's org: Salesforce's standard values (as a
new Enterprise org has them, API 59.0), then the ones the sandbox world adds.

Most standard picklists are unrestricted (any value is saved), so a value a world or a test
sets outside these lists is kept, as in a real org; describe lists these values.
"""

from __future__ import annotations

#: Industry (Lead, Account): the standard values, then the world's (sandbox/world_tables).
INDUSTRY_VALUES = (
    "Agriculture", "Apparel", "Banking", "Biotechnology", "Chemicals", "Communications",
    "Construction", "Consulting", "Education", "Electronics", "Energy", "Engineering",
    "Entertainment", "Environmental", "Finance", "Food & Beverage", "Government",
    "Healthcare", "Hospitality", "Insurance", "Machinery", "Manufacturing", "Media",
    "Not For Profit", "Recreation", "Retail", "Shipping", "Technology",
    "Telecommunications", "Transportation", "Utilities", "Other",
    "Financial Services", "Non-Profit", "Professional Services", "Software")
LEAD_STATUSES = ("Open - Not Contacted", "Working - Contacted", "Closed - Converted",
                 "Closed - Not Converted")
#: Salesforce's standard LeadSource values, then those the sandbox world adds
#: (sandbox_outcomes.SOURCES) and older sandbox ones.
LEAD_SOURCES = ("Web", "Phone Inquiry", "Partner Referral", "Purchased List", "Other",
                "Customer Referral", "Paid Search", "Social Media", "Email", "Trade Show",
                "Webinar", "Content")
SALUTATIONS = ("Mr.", "Ms.", "Mrs.", "Dr.", "Prof.", "Mx.")
RATINGS = ("Hot", "Warm", "Cold")
CLEAN_STATUSES = ("Matched", "Different", "Acknowledged", "NotFound", "Inactive", "Pending",
                  "SelectMatch", "Skipped")
ACCOUNT_TYPES = ("Prospect", "Customer - Direct", "Customer - Channel",
                 "Channel Partner / Reseller", "Installation Partner", "Technology Partner",
                 "Other")
OWNERSHIP = ("Public", "Private", "Subsidiary", "Other")
OPPORTUNITY_STAGES = ("Prospecting", "Qualification", "Needs Analysis", "Value Proposition",
                      "Id. Decision Makers", "Perception Analysis", "Proposal/Price Quote",
                      "Negotiation/Review", "Closed Won", "Closed Lost")
#: each standard stage's default Probability (%) and ForecastCategoryName
STAGE_FORECAST: dict[str, tuple[int, str]] = {
    "Prospecting": (10, "Pipeline"), "Qualification": (10, "Pipeline"),
    "Needs Analysis": (20, "Pipeline"), "Value Proposition": (50, "Pipeline"),
    "Id. Decision Makers": (60, "Pipeline"), "Perception Analysis": (70, "Pipeline"),
    "Proposal/Price Quote": (75, "Pipeline"), "Negotiation/Review": (90, "Pipeline"),
    "Closed Won": (100, "Closed"), "Closed Lost": (0, "Omitted")}
OPPORTUNITY_TYPES = ("Existing Customer - Upgrade", "Existing Customer - Replacement",
                     "Existing Customer - Downgrade", "New Customer")
FORECAST_CATEGORIES = ("Omitted", "Pipeline", "BestCase", "Forecast", "Closed")
FORECAST_CATEGORY_NAMES = ("Omitted", "Pipeline", "Best Case", "Commit", "Closed")
CAMPAIGN_TYPES = ("Webinar", "Content", "Email", "Website", "Conference", "Advertisement",
                  "Other")
CAMPAIGN_MEMBER_STATUSES = ("Sent", "Registered", "Attended", "Responded", "Opened",
                            "Clicked", "Bounced", "Unsubscribed")
#: Task Type: the standard values, then the world's page views ("Web Activity")
TASK_TYPES = ("Call", "Email", "Meeting", "Web Activity", "Other")
TASK_STATUSES = ("Not Started", "In Progress", "Completed", "Waiting on someone else",
                 "Deferred")
PRIORITIES = ("High", "Normal", "Low")
TASK_SUBTYPES = ("Task", "Email", "ListEmail", "Cadence", "Call", "LinkedIn")
CALL_TYPES = ("Internal", "Inbound", "Outbound")
EVENT_TYPES = ("Call", "Email", "Meeting", "Other")
EVENT_SUBTYPES = ("Event",)
SHOW_AS = ("Busy", "OutOfOffice", "Free")
RECURRENCE_TYPES = ("RecursDaily", "RecursEveryWeekday", "RecursMonthly", "RecursMonthlyNth",
                    "RecursWeekly", "RecursYearly", "RecursYearlyNth")
RECURRENCE_INSTANCES = ("First", "Second", "Third", "Fourth", "Last")
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December")
REGENERATED_TYPES = ("RecurrenceRegenerateAfterDueDate",
                     "RecurrenceRegenerateAfterToday", "RecurrenceRegenerated")

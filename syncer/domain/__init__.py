"""The bottom floor: types, the Connector protocol, config, errors. Imports nothing else of
syncer's."""

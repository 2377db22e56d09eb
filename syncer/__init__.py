"""syncer: pull people and activities from CRMs, qualify them with one shared model, and
write stage, score, owner and reasons back, with retries and an audit log."""

__version__ = "0.1.0"

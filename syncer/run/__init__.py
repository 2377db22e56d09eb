"""One sync as stages in order (docs/architecture.md): pull, identity, decide, create,
diff, push, audit trail, recovery, under the run lock."""

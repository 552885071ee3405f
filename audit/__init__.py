"""The audit trail: who read, exported, changed or deleted what, when and from where."""

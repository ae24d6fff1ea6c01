# System tests of `moat top` (docs/control.md).

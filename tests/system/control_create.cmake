# System tests of `moat create` (docs/control.md).

# System tests of `moat trace` (docs/control.md).

"""percpu-explorer: the arm64 kernel VA layout, per-CPU page tables, the percpu
allocator and this_cpu_*() operations, mainline and with the RFC local percpu series."""

from .kernel import KernelConfig, Layout, Region, compute_layout, valid_configs

__all__ = ["KernelConfig", "Layout", "Region", "compute_layout", "valid_configs"]
__version__ = "0.1.0"

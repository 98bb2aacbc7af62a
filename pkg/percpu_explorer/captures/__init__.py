"""Real-kernel captures: bundles, the parsers of each captured text, the
comparison with the model, and making captures under QEMU.
"""

from .bundle import (
    compare,
    derive_config,
    format_comparison,
    format_value,
    load_bundle,
    preemption_model,
    save_bundle,
)
from .qemu import (
    DEFAULT_KERNEL_PACKAGE,
    DEFAULT_WORK,
    CaptureError,
    QemuPlan,
    capture_local,
    capture_qemu,
)

__all__ = [
    "DEFAULT_KERNEL_PACKAGE",
    "DEFAULT_WORK",
    "CaptureError",
    "QemuPlan",
    "capture_local",
    "capture_qemu",
    "compare",
    "derive_config",
    "format_comparison",
    "format_value",
    "load_bundle",
    "preemption_model",
    "save_bundle",
]

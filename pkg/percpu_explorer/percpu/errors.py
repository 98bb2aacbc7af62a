"""The errors of the percpu model."""

from ..errors import InputError


class PercpuError(InputError):
    """A request the kernel would refuse (it WARNs and returns NULL) or a bad free."""


class AreaExhausted(PercpuError):
    """No room left for a new chunk: pcpu_get_vm_areas() found no congruent space."""

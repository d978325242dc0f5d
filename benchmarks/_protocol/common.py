"""What the protocol's phases share: the weights, the methods and their rows, the seeds, its error."""

from __future__ import annotations

SD21 = "stabilityai/stable-diffusion-2-1-base"
SD2_INPAINT = "stabilityai/stable-diffusion-2-inpainting"
METHODS = {
    "sip_sarg": ("SD2.1+SIP w/ SARG (ours)", "SD2.1+SIP w/ SARG (ours)"),
    "sip_plain": ("SD2.1+SIP w/o SARG", "SD2.1+SIP w/o SARG"),
    "sd2_inpaint": ("SD2.1inp (mask only)", "SD2.1inp (mask only)"),
}
SEEDS = (123, 321, 777)
ANNOTATIONS = "test-annotations-object-segmentation.csv"


class ProtocolError(Exception):
    """A missing input or weights: printed as one line, exit code 2."""

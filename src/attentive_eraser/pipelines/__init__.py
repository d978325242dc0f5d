"""diffusers pipelines running Attentive Eraser: SIP and DIP for SD 1.x/2.x and SDXL."""

from .base import AttentiveEraserPipelineOutput, DIPInversionOutput
from .sd import AttentiveEraserDIPPipeline, AttentiveEraserSIPPipeline
from .sdxl import AttentiveEraserSDXLDIPPipeline, AttentiveEraserSDXLSIPPipeline

__all__ = [
    "AttentiveEraserDIPPipeline",
    "AttentiveEraserPipelineOutput",
    "AttentiveEraserSDXLDIPPipeline",
    "AttentiveEraserSDXLSIPPipeline",
    "AttentiveEraserSIPPipeline",
    "DIPInversionOutput",
]

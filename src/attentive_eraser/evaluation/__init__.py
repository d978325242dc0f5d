"""Removal quality: metrics (FID, LPIPS, CLIP, masked PSNR/SSIM) and the ``eval`` engine over a batch's
outputs.
"""

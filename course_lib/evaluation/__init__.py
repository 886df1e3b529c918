"""Measuring models: FID, sample-quality metrics (PSNR, bits/dim, sliced Wasserstein), FLOPs."""

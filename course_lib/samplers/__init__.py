"""Samplers, plain functions with the loop in view: DDPM (ancestral), DDIM and its inversion,
ODE solvers (DPM-Solver++, Euler, Heun), flow samplers, consistency sampling, and editing
(SDEdit, inpainting)."""

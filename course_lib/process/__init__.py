"""The maths of the processes: noise schedules, the forward process, prediction targets and losses,
the VAE's ELBO, flow-matching paths, guidance, and consistency distillation."""

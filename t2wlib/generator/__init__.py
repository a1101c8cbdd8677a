"""The T2W generator (paper §3): weight tokenizer -> denoiser (DiT, or the MLP alternative, by name in
denoisers) -> Gaussian diffusion, the losses L_sym and L_adv, the trainer, training from a zoo, and
the generator folder that is loaded and sampled (t2w)."""

"""The GPU run: vidiff-mini trained and benchmarked on a lent GPU machine within one call's time.

`bash scripts/device_pack.sh` (here, on the CPU machine) makes the carried folder; `bash scripts/device_run.sh`
(on the device) runs it. Modules, in the order a run meets them:
- `pack`: the carried folder `device_pack/` (training clips as WebP, wheels, tokenizer) and unpacking it;
- `wheels`: the carried wheels the device lacks, unpacked onto the path (standard library only);
- `run`: one device call: the budget, its deadlines, the record (`device_run.json`), the output check;
- `stages`: benchmark, autoencoder, latents, UNet, each stopping on the clock;
- `files`: the files a call returns, the UNet split into parts and joined back.

It builds on `vidiff_model.mini` (the model it trains) and `vidiff_model.training` (the loop); neither imports
it. Importing this package imports nothing (`wheels` runs before anything is installed). Details:
docs/device_run.md.
"""

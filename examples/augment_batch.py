"""Augment one batch of the built-in synthetic corpus and print each clip's record.

    python examples/augment_batch.py
"""
import torch

from gpuaug.data import pad_batch
from gpuaug.data.synthetic import synthetic_noise_bank, synthetic_rir_bank, synthetic_speech
from gpuaug.presets import perception_retaining

items = synthetic_speech(4)
wave, lengths = pad_batch([i.wave for i in items])
pipe = perception_retaining(synthetic_noise_bank(), synthetic_rir_bank())
out = pipe(wave, lengths, seed=0, epoch=0, index=torch.tensor([i.index for i in items]))
for item, tag, rec, weight in zip(items, out.tags, out.record, out.labels.loss_weight.tolist()):
    print(f"{item.emotion:8s} {tag:10s} loss weight {weight:.0f}")
    for entry in rec:
        shown = {k: (round(v, 3) if isinstance(v, float) else v) for k, v in entry.items() if not k.startswith("u_")}
        print("    ", shown)
assert torch.equal(pipe(wave, lengths, params=out.params).wave, out.wave)  # exact replay

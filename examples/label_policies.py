"""What happens to labels when a pipeline includes perception-altering augmentations.

    python examples/label_policies.py
"""
import torch

from gpuaug import LabelPolicy, Pipeline
from gpuaug.data.synthetic import synthetic_insert_bank
from gpuaug.transforms import InsertClip, OneOf, PerceptionPolicyError, Speed

wave = torch.randn(6, 16000) * 0.1
try:
    Pipeline([Speed(factor_choices=(0.75, 1.25))], require="retaining")
except PerceptionPolicyError as err:
    print("refused:", err)

transforms = OneOf([Speed(factor_choices=(0.75, 1.0, 1.25)), InsertClip(synthetic_insert_bank())])
for mode in ("drop", "mask", "relabel"):
    out = Pipeline([transforms], label_policy=LabelPolicy(on_altering=mode, delta_scale=2.0))(wave, seed=1)
    print(f"{mode:8s} tags={out.tags}")
    print(f"         actions={out.labels.action} keep={out.labels.keep.tolist()}")
    print(f"         loss_weight={out.labels.loss_weight.tolist()} delta={out.labels.delta.tolist()}")

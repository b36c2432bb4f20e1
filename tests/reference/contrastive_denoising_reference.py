"""Reference values for src/training/pretrain/contrastive/tests.rs: pytorch-widedeep 1.7.0's
InfoNCELoss and DenoisingLoss (and their sum, what ContrastiveDenoisingTrainer._compute_loss
returns for loss_type="both") on the fixed tensors of the Rust tests.

Run: ~/.cache/widedeep/bench-venv/bin/python tests/reference/contrastive_denoising_reference.py
"""
import torch
from pytorch_widedeep.losses import InfoNCELoss, DenoisingLoss


def p(name, v):
    print(f"{name} = {float(v):.9f}")


def ar(n, a, b, f):
    return f(torch.arange(n, dtype=torch.float32) * a + b)


# projections of the two views: [batch 3, tokens 2, width 4]
z = ar(24, 0.37, 0.0, torch.sin).view(3, 2, 4)
z_ = ar(24, 0.21, 0.5, torch.cos).view(3, 2, 4)
p("info_nce_t01", InfoNCELoss()((z, z_)))
p("info_nce_t05", InfoNCELoss(temperature=0.5)((z, z_)))
# [batch 4, width 5] (one token)
w = ar(20, 0.53, 0.1, torch.sin).view(4, 5)
w_ = ar(20, 0.11, -0.3, torch.cos).view(4, 5)
p("info_nce_2d", InfoNCELoss()((w, w_)))

# one MLP per column: two categorical columns (3 and 2 classes), two continuous ones
c1 = torch.tensor([0, 2, 1, 2])
l1 = ar(12, 0.29, 0.0, torch.sin).view(4, 3)
c2 = torch.tensor([1, 0, 0, 1])
l2 = ar(8, 0.47, 0.2, torch.cos).view(4, 2)
v1 = ar(4, 0.5, -1.0, lambda t: t).view(4, 1)
pv1 = ar(4, 0.3, 0.1, torch.sin).view(4, 1)
v2 = ar(4, -0.25, 0.4, lambda t: t).view(4, 1)
pv2 = ar(4, 0.7, 0.0, torch.cos).view(4, 1)
cat_multi = [(c1, l1), (c2, l2)]
cont_multi = [(v1, pv1), (v2, pv2)]
p("denoise_multi", DenoisingLoss()(cat_multi, cont_multi))
p("denoise_multi_weighted", DenoisingLoss(lambda_cat=0.5, lambda_cont=2.0)(cat_multi, cont_multi))
p("denoise_cat_only", DenoisingLoss()(cat_multi, None))
p("denoise_cont_only", DenoisingLoss()(None, cont_multi))
# one MLP for all columns: the pairs stacked over the batch
cs = torch.tensor([0, 2, 1, 2, 4, 3, 3, 4])
ls = ar(40, 0.13, 0.3, torch.sin).view(8, 5)
vs = torch.cat([v1, v2])
pvs = torch.cat([pv1, pv2])
p("denoise_single", DenoisingLoss()((cs, ls), (vs, pvs)))
p("both", InfoNCELoss()((z, z_)) + DenoisingLoss()(cat_multi, cont_multi))

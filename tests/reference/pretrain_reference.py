"""Reference values of the encoder-decoder pretraining loss (pytorch-widedeep 1.7.0's
EncoderDecoderLoss) on fixed tensors, hard-coded in src/training/pretrain/encoder_decoder/tests.rs.

Run: /root/.cache/widedeep/bench-venv/bin/python tests/reference/pretrain_reference.py
"""
import torch
from pytorch_widedeep.losses import EncoderDecoderLoss

torch.set_printoptions(precision=10)

# 4 rows, 5 features: column 3 is constant (zero variance, mean 2 -> divided by |mean|),
# column 4 is constant zero (variance 0, mean 0 -> divided by 1)
x_true = torch.tensor([
    [0.5, -1.0, 2.0, 2.0, 0.0],
    [1.5, 0.0, -2.0, 2.0, 0.0],
    [-0.5, 3.0, 1.0, 2.0, 0.0],
    [2.5, 1.0, 0.5, 2.0, 0.0],
], dtype=torch.float32)
x_pred = torch.tensor([
    [0.0, -0.5, 1.0, 1.0, 0.5],
    [1.0, 0.5, -1.0, 2.5, -0.5],
    [0.5, 2.0, 0.0, 2.0, 0.25],
    [2.0, 1.5, 1.5, 3.0, 0.0],
], dtype=torch.float32, requires_grad=True)
mask = torch.tensor([
    [1, 0, 1, 1, 0],
    [0, 1, 1, 0, 1],
    [1, 1, 0, 0, 1],
    [0, 0, 0, 0, 0],  # nothing masked: contributes 0 (divided by 1e-9)
], dtype=torch.float32)

loss = EncoderDecoderLoss()(x_true, x_pred, mask)
loss.backward()
print("loss", repr(loss.item()))
print("grad_pred", x_pred.grad.flatten().tolist())

# the same with every entry masked (what evaluation mode computes)
ones = torch.ones_like(mask)
print("loss_all", repr(EncoderDecoderLoss()(x_true, x_pred.detach(), ones).item()))

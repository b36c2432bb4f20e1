"""Reference values for src/training/objectives/tests.rs: PyTorch 2.11.0 and pytorch-widedeep
1.7.0 losses on the fixed tensors of the Rust tests.

Run: ~/.cache/widedeep/bench-venv/bin/python tests/reference/objectives_reference.py
"""
import torch, torch.nn.functional as F
from pytorch_widedeep.losses import *
torch.set_printoptions(precision=10)
def p(name, v): print(f"{name} = {float(v):.9f}")
z=torch.tensor([[0.5],[-1.2],[2.0],[0.1]]); yb=torch.tensor([[1.],[0.],[1.],[0.]])
p("bce", F.binary_cross_entropy_with_logits(z,yb))
p("bce_pw3", torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor([3.0]))(z,yb))
p("focal_bin", FocalLoss(alpha=0.25,gamma=2.0)(z,yb))
m=torch.tensor([[1.0,0.2,-0.5],[0.1,0.3,2.0],[-1.0,0.5,0.0],[0.3,0.3,0.3]]); ym=torch.tensor([0,2,1,1])
p("ce", F.cross_entropy(m,ym))
p("ce_w", torch.nn.CrossEntropyLoss(weight=torch.tensor([1.0,2.0,0.5]))(m,ym))
p("focal_mc", FocalLoss(alpha=0.25,gamma=2.0)(m,ym))
pr=torch.tensor([[0.5],[1.5],[3.0],[0.2]]); yr=torch.tensor([[1.0],[1.0],[2.0],[0.0]])
p("mse", MSELoss()(pr,yr)); p("mae", L1Loss()(pr,yr)); p("msle", MSLELoss()(pr,yr))
p("rmse", RMSELoss()(pr,yr)); p("rmsle", RMSLELoss()(pr,yr))
p("huber02", HuberLoss()(pr,yr)); p("huber1", HuberLoss(beta=1.0)(pr,yr))
p("tweedie15", TweedieLoss()(pr,yr)); p("tweedie12", TweedieLoss()(pr,yr,p=1.2))
p("focalr_mse", FocalR_MSELoss()(pr,yr)); p("focalr_l1", FocalR_L1Loss()(pr,yr)); p("focalr_rmse", FocalR_RMSELoss()(pr,yr))
p("focalr_mse_tanh", FocalR_MSELoss(beta=0.5,gamma=2.0,activation_fn="tanh")(pr,yr))
p("focalr_l1_tanh", FocalR_L1Loss(beta=0.5,gamma=2.0,activation_fn="tanh")(pr,yr))
zo=torch.tensor([[0.3,0.1,0.5],[-0.2,1.0,-1.0],[1.5,-0.5,0.2],[0.0,0.0,0.0]]); yz=torch.tensor([[0.0],[2.5],[1.2],[0.0]])
p("ziln", ZILNLoss()(zo,yz))
from pytorch_widedeep.training.trainer import Trainer
ev=Trainer._predict_ziln(zo)
print("ziln_pred =", [round(float(v),9) for v in ev.flatten()])
qo=torch.tensor([[0.1,0.5,0.9],[1.0,1.2,1.5],[-0.5,0.0,0.5],[2.0,2.5,3.0]]); yq=torch.tensor([0.4,2.0,-1.0,2.5]); qs=[0.1,0.5,0.9]
p("quantile_reference_impl", QuantileLoss(qs)(qo,yq))
e=yq.view(-1,1)-qo; q=torch.tensor(qs).view(1,-1)
p("quantile_pinball", torch.max(q*e,(q-1)*e).mean())
# multi-target: [reg, bin, mc3], weights [1,0.5,2], mean
mo=torch.tensor([[0.5,0.2,1.0,0.0,-1.0],[1.5,-0.3,0.1,0.2,0.3],[-0.5,1.2,-0.2,0.9,0.0]]); 
my=torch.tensor([[1.0,1.0,0.0],[2.0,0.0,2.0],[0.0,1.0,1.0]])
l1=F.mse_loss(mo[:,0],my[:,0]); l2=F.binary_cross_entropy_with_logits(mo[:,1],my[:,1],pos_weight=torch.tensor(2.0)); l3=F.cross_entropy(mo[:,2:5],my[:,2].long())
p("mt_mean", torch.stack([l1*1.0,l2*0.5,l3*2.0]).mean()); p("mt_sum_unweighted", l1+l2+l3)

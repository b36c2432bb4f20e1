"""Reference values for src/training/metrics/tests.rs: scikit-learn 1.9.1 (classification,
regression, NDCG) and pytorch-widedeep 1.7.0 ranking metrics on the fixed inputs of the Rust tests.

Run: ~/.cache/widedeep/bench-venv/bin/python tests/reference/metrics_reference.py
"""
import numpy as np, torch
from sklearn import metrics as M
def p(name, v): print(f"{name} = {float(v):.12f}")
s=np.array([0.9,0.8,0.2,0.6,0.1,0.7,0.3,0.55]); y=np.array([1,0,1,1,0,0,0,1]); yp=(s>0.5).astype(int)
p("b_acc",M.accuracy_score(y,yp)); p("b_prec",M.precision_score(y,yp)); p("b_rec",M.recall_score(y,yp)); p("b_f1",M.f1_score(y,yp))
p("b_f2",M.fbeta_score(y,yp,beta=2)); p("b_f05",M.fbeta_score(y,yp,beta=0.5)); p("b_auc",M.roc_auc_score(y,s)); p("b_micro_f1",M.f1_score(y,yp,average="micro"))
P=np.array([[0.7,0.1,0.1,0.1],[0.2,0.5,0.2,0.1],[0.1,0.3,0.4,0.2],[0.3,0.3,0.1,0.3],[0.05,0.15,0.2,0.6],[0.4,0.35,0.15,0.1],[0.1,0.2,0.6,0.1],[0.25,0.2,0.3,0.25],[0.1,0.6,0.2,0.1],[0.3,0.1,0.2,0.4]],dtype=np.float32)
P=P/P.sum(1,keepdims=True)
ym=np.array([0,1,1,3,3,1,2,0,1,2]); pm=P.argmax(1)
print("pred", pm.tolist())
p("m_acc",M.accuracy_score(ym,pm)); p("m_top2",M.top_k_accuracy_score(ym,P,k=2,labels=[0,1,2,3]))
for a in ["macro","micro"]:
    p(f"m_prec_{a}",M.precision_score(ym,pm,average=a,zero_division=0)); p(f"m_rec_{a}",M.recall_score(ym,pm,average=a,zero_division=0))
    p(f"m_f1_{a}",M.f1_score(ym,pm,average=a,zero_division=0)); p(f"m_f2_{a}",M.fbeta_score(ym,pm,beta=2,average=a,zero_division=0))
p("m_auc_ovr",M.roc_auc_score(ym,P,multi_class="ovr",average="macro"))
yr=np.array([3.0,-0.5,2.0,7.0,1.5]); pr=np.array([2.5,0.0,2.0,8.0,1.0])
p("r_r2",M.r2_score(yr,pr)); p("r_rmse",np.sqrt(M.mean_squared_error(yr,pr))); p("r_mae",M.mean_absolute_error(yr,pr))
print("P flat", [float(f"{v:.8f}") for v in P.flatten()])
# ranking: reference metrics, 3 groups of 5 items
from pytorch_widedeep.metrics import NDCG_at_k, MAP_at_k, HitRatio_at_k, Precision_at_k, Recall_at_k
rs=torch.tensor([0.9,0.1,0.5,0.3,0.7, 0.2,0.8,0.6,0.4,0.1, 0.3,0.2,0.1,0.5,0.4])
rr=torch.tensor([1.,0.,0.,1.,0., 0.,0.,0.,0.,0., 0.,1.,1.,0.,1.])
rg=torch.tensor([3.,0.,1.,2.,0., 0.,2.,1.,0.,3., 1.,0.,2.,0.,0.])
for k in [3,5]:
    p(f"ndcg{k}",NDCG_at_k(n_cols=5,k=k)(rs,rr)); p(f"ndcg{k}_graded",NDCG_at_k(n_cols=5,k=k)(rs,rg))
    p(f"map{k}",MAP_at_k(n_cols=5,k=k)(rs,rr)); p(f"hr{k}",HitRatio_at_k(n_cols=5,k=k)(rs,rr))
    p(f"prec{k}",Precision_at_k(n_cols=5,k=k)(rs,rr)); p(f"rec{k}",Recall_at_k(n_cols=5,k=k)(rs,rr))
    p(f"sk_ndcg{k}", M.ndcg_score(rr.view(3,5).numpy(), rs.view(3,5).numpy(), k=k))

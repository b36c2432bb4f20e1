//! The players of the coalition game: which player owns each input column, and which players
//! can change the output of a row at all (their columns differ from some background row).
use crate::explain::{host_values, Explainer, Slot};
use crate::models::ModelInput;
use tch::{Kind, Tensor};

/// Player index of every input column, per input.
pub(super) struct PlayerMap {
    /// The game covers the deep components only: the wide columns are not players (their
    /// attributions are taken in closed form) and stay at the explained row's values.
    pub deep_only: bool,
    /// Player of each wide column (unused when `deep_only`).
    pub wide: Vec<i64>,
    /// Player of each categorical column.
    pub cat: Vec<i64>,
    /// Player of each continuous column.
    pub cont: Vec<i64>,
    /// Player of each text input.
    pub text: Vec<usize>,
    /// Player of each image input.
    pub image: Vec<usize>,
}

/// The map of a game whose player q is feature `players[q]` (`deep_only`: see
/// [`PlayerMap::deep_only`]).
pub(super) fn player_map(ex: &Explainer, players: &[usize], deep_only: bool) -> PlayerMap {
    let l = ex.layout();
    let mut map = PlayerMap {
        deep_only,
        wide: vec![0; l.wide],
        cat: vec![0; l.cat],
        cont: vec![0; l.cont],
        text: vec![0; l.text],
        image: vec![0; l.image],
    };
    for (q, &f) in players.iter().enumerate() {
        for slot in &ex.features()[f].slots {
            match *slot {
                Slot::Wide(_) if deep_only => {}
                Slot::Wide(j) => map.wide[j] = q as i64,
                Slot::Cat(j) => map.cat[j] = q as i64,
                Slot::Cont(j) => map.cont[j] = q as i64,
                Slot::Text(j) => map.text[j] = q,
                Slot::Image(j) => map.image[j] = q,
            }
        }
    }
    map
}

impl PlayerMap {
    /// The tabular inputs whose columns are players, as (the rows' columns `[n, c]`, the
    /// background's `[M, c]`, the player of each column): wide (unless the game covers the deep
    /// components only), categorical, continuous.
    fn tabular<'a>(
        &'a self,
        x: &'a ModelInput,
        bg: &'a ModelInput,
    ) -> impl Iterator<Item = (&'a Tensor, &'a Tensor, &'a [i64])> {
        let wide = if self.deep_only { &None } else { &x.wide };
        [
            (wide, &bg.wide, &self.wide),
            (&x.cat, &bg.cat, &self.cat),
            (&x.cont, &bg.cont, &self.cont),
        ]
        .into_iter()
        .filter_map(|(xt, bt, players)| Some((xt.as_ref()?, bt.as_ref()?, players.as_slice())))
    }

    /// The text and image inputs, as (the rows `[n, ...]`, the background `[M, ...]`, the
    /// input's player).
    fn whole<'a>(
        &'a self,
        x: &'a ModelInput,
        bg: &'a ModelInput,
    ) -> impl Iterator<Item = (&'a Tensor, &'a Tensor, usize)> {
        let text = x.text.iter().zip(&bg.text).zip(&self.text);
        let image = x.image.iter().zip(&bg.image).zip(&self.image);
        text.chain(image).map(|((xt, bt), &q)| (xt, bt, q))
    }
}

/// A boolean tensor's values on the host (any shape, row-major).
fn host_bools(t: &Tensor) -> Vec<bool> {
    host_values(t, Kind::Bool).unwrap_or_default()
}

/// `[n]`: whether each row of `xt` (`[n, ...]`) differs from row `m` of `bt` anywhere.
fn differs_from_row(xt: &Tensor, bt: &Tensor, m: i64) -> Tensor {
    let bm = bt.get(m).flatten(0, -1).unsqueeze(0);
    xt.flatten(1, -1).ne_tensor(&bm).any_dim(1, false)
}

/// `[n, P]` (row-major): whether player q's columns in row r differ from some background row.
pub(super) fn varying(
    ex: &Explainer,
    x: &ModelInput,
    map: &PlayerMap,
    n_players: usize,
) -> Vec<bool> {
    let n = x.batch_size() as usize;
    let bg = ex.background.input();
    let mut out = vec![false; n * n_players];
    tch::no_grad(|| {
        let mut mark = |differs: Tensor, q: usize| {
            for (r, v) in host_bools(&differs).into_iter().enumerate() {
                if v {
                    out[r * n_players + q] = true;
                }
            }
        };
        for (xt, bt, players) in map.tabular(x, bg) {
            for (j, &q) in players.iter().enumerate() {
                let xc = xt.select(1, j as i64).unsqueeze(1); // [n, 1]
                let bc = bt.select(1, j as i64).unsqueeze(0); // [1, M]
                mark(xc.ne_tensor(&bc).any_dim(1, false), q as usize);
            }
        }
        for (xt, bt, q) in map.whole(x, bg) {
            let mut any = Tensor::zeros([xt.size()[0]], (Kind::Bool, xt.device()));
            for m in 0..bt.size()[0] {
                any = any.logical_or(&differs_from_row(xt, bt, m));
            }
            mark(any, q);
        }
    });
    out
}

/// `[nb, M]` player bitmasks: bit q of entry (r, m) is set when player q's columns differ
/// between row r of `x` and background row m (wide columns count only when they are players).
/// For at most 64 players.
pub(super) fn differences(ex: &Explainer, x: &ModelInput, map: &PlayerMap) -> Vec<u64> {
    let nb = x.batch_size() as usize;
    let bg = ex.background.input();
    let m = bg.batch_size() as usize;
    let mut bits = vec![0u64; nb * m];
    tch::no_grad(|| {
        for (xt, bt, players) in map.tabular(x, bg) {
            let c = players.len();
            // [nb, M, c]
            let ne = host_bools(&xt.unsqueeze(1).ne_tensor(&bt.unsqueeze(0)));
            for (i, chunk) in ne.chunks(c.max(1)).enumerate() {
                for (j, &d) in chunk.iter().enumerate() {
                    if d {
                        bits[i] |= 1u64 << players[j];
                    }
                }
            }
        }
        for (xt, bt, q) in map.whole(x, bg) {
            for mm in 0..m {
                let d = host_bools(&differs_from_row(xt, bt, mm as i64));
                for (r, v) in d.into_iter().enumerate() {
                    if v {
                        bits[r * m + mm] |= 1u64 << q;
                    }
                }
            }
        }
    });
    bits
}

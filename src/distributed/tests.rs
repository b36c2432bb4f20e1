use super::*;

fn rows(t: &Tensor) -> Vec<i64> {
    Vec::<i64>::try_from(t).unwrap()
}

#[test]
fn shards_are_disjoint_cover_the_rows_and_pad_like_distributed_sampler() {
    let order = Tensor::from_slice(&[4i64, 0, 3, 1, 2]);
    // 5 rows over 2 ranks: 3 each, the sixth position repeats the first row of the order
    let (r0, real0) = shard_rows(Some(&order), 5, 0, 2);
    let (r1, real1) = shard_rows(Some(&order), 5, 1, 2);
    assert_eq!(rows(&r0), vec![4, 3, 2]);
    assert_eq!(rows(&r1), vec![0, 1, 4]);
    assert_eq!((real0, real1), (3, 2), "rank 1's last row is padding");
    // without padding, every row exactly once
    let (a, ra) = shard_rows(None, 6, 0, 3);
    let (b, rb) = shard_rows(None, 6, 1, 3);
    let (c, rc) = shard_rows(None, 6, 2, 3);
    let mut all: Vec<i64> = [rows(&a), rows(&b), rows(&c)].concat();
    all.sort();
    assert_eq!(all, (0..6).collect::<Vec<_>>());
    assert_eq!((ra, rb, rc), (2, 2, 2));
    // fewer rows than ranks: every rank still gets one row, padding beyond the rows
    let (r, real) = shard_rows(None, 2, 3, 4);
    assert_eq!((rows(&r), real), (vec![1], 0));
    assert_eq!(rows_per_rank(5, 2), 3);
}

#[test]
fn a_group_of_one_is_the_identity() {
    let d = Distributed::new(DistributedConfig::default()).unwrap();
    assert_eq!((d.rank(), d.world_size(), d.is_main()), (0, 1, true));
    let t = Tensor::from_slice(&[1.0f32, 2.0]);
    d.all_reduce_sum(std::slice::from_ref(&t)).unwrap();
    d.broadcast(std::slice::from_ref(&t), 0).unwrap();
    assert_eq!(Vec::<f32>::try_from(&t).unwrap(), vec![1.0, 2.0]);
    assert_eq!(
        Vec::<f32>::try_from(&d.all_gather(&t).unwrap()).unwrap(),
        vec![1.0, 2.0]
    );
    assert!(d.any(true).unwrap() && !d.any(false).unwrap());
    assert_eq!(d.gather_values(&[3, 4]).unwrap(), vec![vec![3, 4]]);
    let shared: Vec<String> = d.on_main_shared(|| Ok(vec!["a".to_string()])).unwrap();
    assert_eq!(shared, ["a"]);
    assert_eq!(d.comm_stats(), CommStats::default(), "nothing communicated");
}

#[test]
fn bad_settings_are_typed_errors() {
    let bad_rank = DistributedConfig {
        rank: 2,
        world_size: 2,
        ..Default::default()
    };
    let e = Distributed::new(bad_rank).unwrap_err().to_string();
    assert!(e.contains("distributed.rank"), "{e}");
    let nccl = DistributedConfig {
        backend: Backend::Nccl,
        ..Default::default()
    };
    let e = Distributed::new(nccl).unwrap_err();
    assert!(
        matches!(&e, WideDeepError::Distributed { reason, .. } if reason.contains("NCCL")),
        "{e}"
    );
}

#[test]
fn an_absent_peer_is_a_timeout_error_not_a_hang() {
    assert!(
        Distributed::available(),
        "the c10d shim must be built (Gloo headers)"
    );
    // rank 1 of 2 with nobody hosting the store: the rendezvous gives up after the timeout
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cfg = DistributedConfig {
        rank: 1,
        world_size: 2,
        master_port: port,
        timeout: Duration::from_secs(2),
        ..Default::default()
    };
    let t0 = std::time::Instant::now();
    let e = Distributed::new(cfg).unwrap_err();
    assert!(t0.elapsed() < Duration::from_secs(30), "{:?}", t0.elapsed());
    assert!(
        matches!(&e, WideDeepError::Distributed { rank: 1, reason, .. } if reason.contains("cannot join")),
        "{e}"
    );
}

//! The image models' unit tests.
use super::*;

fn img(n: i64, s: i64) -> ModelInput {
    ModelInput {
        image: vec![Tensor::randn([n, 3, s, s], (Kind::Float, Device::Cpu))],
        ..Default::default()
    }
}

#[test]
fn small_cnn_shapes_and_embed_split() {
    let _rng = crate::torch_rng_lock();
    tch::manual_seed(6);
    let vs = nn::VarStore::new(Device::Cpu);
    let m = SmallCnnConfig::new(ImageInput::new(0, "digit"))
        .channels([4, 8])
        .head(MlpConfig::default().hidden_dims([5]))
        .build(&vs.root())
        .unwrap();
    let x = img(2, 28);
    m.check_input(&x).unwrap();
    assert_eq!(m.forward_t(&x, true).size(), [2, 5]);
    let direct = m.forward_t(&x, false);
    let split = m.forward_embedded(&m.embed(&x).unwrap(), false).unwrap();
    assert!(direct.allclose(&split, 1e-6, 1e-6, false));
    // tiny images are not pooled below 1×1
    assert_eq!(m.forward_t(&img(1, 3), false).size(), [1, 5]);
    let bad = ModelInput {
        image: vec![Tensor::zeros([1, 1, 28, 28], (Kind::Float, Device::Cpu))],
        ..Default::default()
    };
    let err = m.check_input(&bad).unwrap_err().to_string();
    assert!(err.contains("digit"), "{err}");
    assert!(SmallCnnConfig::default()
        .channels([0])
        .build(&vs.root())
        .is_err());
}

#[test]
fn u8_inputs_are_normalised_per_batch_like_the_f32_form() {
    let _rng = crate::torch_rng_lock();
    tch::manual_seed(8);
    let vs = nn::VarStore::new(Device::Cpu);
    let (mean, std) = ([0.2f32, 0.5, 0.7], [0.3f32, 0.1, 0.25]);
    let m = SmallCnnConfig::new(ImageInput::new(0, "img").stats(mean, std))
        .channels([4])
        .build(&vs.root())
        .unwrap();
    let px = Tensor::randint(256, [2, 3, 5, 5], (Kind::Int64, Device::Cpu)).to_kind(Kind::Uint8);
    let data = widedeep_preprocessing::ImageData {
        pixels: ndarray::Array4::from_shape_vec(
            (2, 3, 5, 5),
            Vec::<u8>::try_from(px.view([-1])).unwrap(),
        )
        .unwrap(),
        n_failed: 0,
    };
    let f = data.normalized(mean, std);
    let normalised = Tensor::from_slice(f.as_slice().unwrap()).view([2, 3, 5, 5]);
    let raw = ModelInput {
        image: vec![px],
        ..Default::default()
    };
    let norm = ModelInput {
        image: vec![normalised.shallow_clone()],
        ..Default::default()
    };
    m.check_input(&raw).unwrap();
    let (a, b) = (m.forward_t(&raw, false), m.forward_t(&norm, false));
    assert!(a.allclose(&b, 1e-5, 1e-5, false));
    // the attribution inputs are the normalised pixels
    let e = m.embed(&raw).unwrap();
    assert!(e[0].allclose(&normalised, 1e-5, 1e-5, false));
    let err = SmallCnnConfig::new(ImageInput::default().stats(mean, [0.0, 1.0, 1.0]))
        .build(&vs.root())
        .unwrap_err()
        .to_string();
    assert!(err.contains("small_cnn.input.std"), "{err}");
}

#[test]
fn backbones_build_freeze_and_reject_bad_weights() {
    let _rng = crate::torch_rng_lock();
    tch::manual_seed(7);
    for backbone in [Backbone::Resnet18, Backbone::MobilenetV2] {
        let vs = nn::VarStore::new(Device::Cpu);
        let m = BackboneConfig::new(ImageInput::default(), backbone)
            .n_trainable(1)
            .build(&vs.root())
            .unwrap();
        assert_eq!(
            m.forward_t(&img(2, 32), false).size(),
            [2, backbone.output_dim()]
        );
        let vars = vs.variables();
        let (frozen, last) = match backbone {
            Backbone::MobilenetV2 => (
                "backbone.features.0.0.weight",
                "backbone.features.18.0.weight",
            ),
            _ => (
                "backbone.layer3.0.conv1.weight",
                "backbone.layer4.0.conv1.weight",
            ),
        };
        assert!(!vars[frozen].requires_grad());
        assert!(vars[last].requires_grad());
    }
    let vs = nn::VarStore::new(Device::Cpu);
    let err = BackboneConfig::new(ImageInput::default(), Backbone::Resnet18)
        .n_trainable(9)
        .build(&vs.root())
        .unwrap_err()
        .to_string();
    assert!(err.contains("n_trainable"), "{err}");
    let err = BackboneConfig::new(ImageInput::default(), Backbone::Resnet18)
        .weights("/nonexistent/resnet.safetensors")
        .build(&vs.root())
        .unwrap_err()
        .to_string();
    assert!(err.contains("backbone.weights"), "{err}");
}

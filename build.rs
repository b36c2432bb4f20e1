//! Makes every binary, test, example and bench of this crate start without `LD_LIBRARY_PATH`:
//! adds an rpath to the libtorch `lib/` directory and links `libtorch` with `--no-as-needed`,
//! so that `libtorch_cuda` is loaded (otherwise the GPU is silently never seen).
//!
//! The libtorch directory is found like torch-sys finds it: `LIBTORCH_LIB`, else `LIBTORCH/lib`,
//! else the `torch` package of the Python named by `LIBTORCH_PYTHON`/`PYTHON`, else `python3`
//! on PATH (the Makefile puts the cached venv from `scripts/setup-libtorch.sh` first on PATH).
//!
//! It also compiles the one C++ file of the crate, the autograd shim of the fused attention
//! kernels (`src/models/tabular/fused_attention.cpp`), against the headers of that libtorch,
//! and the c10d shim of `src/distributed/` (`c10d.cpp`) when the Gloo headers that libtorch's
//! `ProcessGroupGloo.hpp` includes are found (see [`gloo_include`]); then it sets
//! `cfg(widedeep_c10d)`, else distributed training reports itself not built.
use std::path::PathBuf;
use std::process::Command;

/// What `code` prints, run by the Python named by `LIBTORCH_PYTHON`/`PYTHON`, else `python3`.
fn python_output(code: &str) -> Option<String> {
    let python = std::env::var("LIBTORCH_PYTHON")
        .or_else(|_| std::env::var("PYTHON"))
        .unwrap_or_else(|_| "python3".to_string());
    let out = Command::new(python).args(["-c", code]).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn torch_lib_dir() -> Option<PathBuf> {
    if let Ok(lib) = std::env::var("LIBTORCH_LIB") {
        return Some(PathBuf::from(lib));
    }
    if let Ok(root) = std::env::var("LIBTORCH") {
        return Some(PathBuf::from(root).join("lib"));
    }
    let dir = PathBuf::from(python_output(
        "import os, torch; print(os.path.join(os.path.dirname(torch.__file__), 'lib'))",
    )?);
    dir.is_dir().then_some(dir)
}

/// Whether libtorch was built with the C++11 ABI of libstdc++ (the PyPI wheels are); asks the
/// same Python as [`torch_lib_dir`], defaulting to yes.
fn cxx11_abi() -> &'static str {
    match python_output("import torch; print(int(torch._C._GLIBCXX_USE_CXX11_ABI))").as_deref() {
        Some("0") => "0",
        _ => "1",
    }
}

/// Compiles the autograd shim of the fused attention kernels (`src/models/tabular/
/// fused_attention.cpp`) against the headers next to libtorch's `lib/`.
fn compile_shim(lib: &std::path::Path) {
    let src = "src/models/tabular/fused_attention.cpp";
    println!("cargo:rerun-if-changed={src}");
    let include = lib.parent().unwrap_or(lib).join("include");
    cc::Build::new()
        .cpp(true)
        .file(src)
        .include(&include)
        .include(include.join("torch/csrc/api/include"))
        .flag("-std=c++17")
        .define("_GLIBCXX_USE_CXX11_ABI", cxx11_abi())
        .flag_if_supported("-Wno-unused-parameter")
        .flag_if_supported("-Wno-deprecated-declarations")
        .opt_level(2)
        .compile("widedeep_fused_attention");
}

/// The directory holding `gloo/config.h`: `WIDEDEEP_GLOO_INCLUDE`, else the copy that
/// `scripts/setup-libtorch.sh` unpacks next to the torch venv (`<venv>/gloo/include`, the venv
/// being the `sys.prefix` of the Python that finds libtorch), else the system's `/usr/include`
/// (Debian's `libgloo-dev`).
fn gloo_include() -> Option<PathBuf> {
    let has = |d: &PathBuf| d.join("gloo/config.h").is_file();
    if let Ok(dir) = std::env::var("WIDEDEEP_GLOO_INCLUDE") {
        return Some(PathBuf::from(dir)).filter(has);
    }
    let venv = python_output("import sys; print(sys.prefix)")
        .map(|p| PathBuf::from(p).join("gloo/include"));
    venv.into_iter()
        .chain([PathBuf::from("/usr/include")])
        .find(has)
}

/// Compiles the c10d shim of `src/distributed/` (TCPStore, ProcessGroupGloo and the
/// collectives the trainer calls) against libtorch's headers and the Gloo headers in `gloo`.
fn compile_c10d_shim(lib: &std::path::Path, gloo: &std::path::Path) {
    let src = "src/distributed/c10d.cpp";
    println!("cargo:rerun-if-changed={src}");
    let include = lib.parent().unwrap_or(lib).join("include");
    cc::Build::new()
        .cpp(true)
        .file(src)
        .include(&include)
        .include(include.join("torch/csrc/api/include"))
        .include(gloo)
        .define("USE_C10D_GLOO", None)
        .flag("-std=c++17")
        .define("_GLIBCXX_USE_CXX11_ABI", cxx11_abi())
        .flag_if_supported("-Wno-unused-parameter")
        .flag_if_supported("-Wno-deprecated-declarations")
        .opt_level(2)
        .compile("widedeep_c10d");
    println!("cargo:rustc-cfg=widedeep_c10d");
}

fn main() {
    println!("cargo::rustc-check-cfg=cfg(widedeep_c10d)");
    for var in [
        "WIDEDEEP_GLOO_INCLUDE",
        "LIBTORCH",
        "LIBTORCH_LIB",
        "LIBTORCH_PYTHON",
        "PYTHON",
        "PATH",
    ] {
        println!("cargo:rerun-if-env-changed={var}");
    }
    println!("cargo:rerun-if-changed=build.rs");
    match torch_lib_dir() {
        Some(lib) => {
            compile_shim(&lib);
            match gloo_include() {
                Some(gloo) => {
                    println!("cargo:rerun-if-changed={}", gloo.join("gloo/config.h").display());
                    compile_c10d_shim(&lib, &gloo)
                }
                None => println!(
                    "cargo:warning=Gloo headers not found: distributed training is not built (run scripts/setup-libtorch.sh or set WIDEDEEP_GLOO_INCLUDE)"
                ),
            }
            let dir = lib.display();
            println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
            println!("cargo:rustc-link-arg=-L{dir}");
            println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
            println!("cargo:rustc-link-arg=-ltorch");
            if std::path::Path::new(&format!("{dir}/libtorch_cuda.so")).exists() {
                println!("cargo:rustc-link-arg=-ltorch_cuda");
            }
            println!("cargo:rustc-link-arg=-Wl,--as-needed");
        }
        None => println!(
            "cargo:warning=libtorch not found: run scripts/setup-libtorch.sh and put its venv's bin/ on PATH (the Makefile does this)"
        ),
    }
}

//! Makes the `widedeep` binary start without `LD_LIBRARY_PATH`: the same rpath to libtorch's
//! `lib/` and `--no-as-needed -ltorch` as the library's own build script (see `../build.rs`).
use std::process::Command;

fn main() {
    for var in [
        "LIBTORCH",
        "LIBTORCH_LIB",
        "LIBTORCH_PYTHON",
        "PYTHON",
        "PATH",
    ] {
        println!("cargo:rerun-if-env-changed={var}");
    }
    let lib = std::env::var("LIBTORCH_LIB")
        .ok()
        .or_else(|| std::env::var("LIBTORCH").ok().map(|r| format!("{r}/lib")))
        .or_else(|| {
            let python = std::env::var("LIBTORCH_PYTHON")
                .or_else(|_| std::env::var("PYTHON"))
                .unwrap_or_else(|_| "python3".into());
            let out = Command::new(python)
                .args([
                    "-c",
                    "import os, torch; print(os.path.join(os.path.dirname(torch.__file__), 'lib'))",
                ])
                .output()
                .ok()?;
            out.status
                .success()
                .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
        });
    if let Some(dir) = lib {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
        println!("cargo:rustc-link-arg=-L{dir}");
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
        println!("cargo:rustc-link-arg=-ltorch");
        if std::path::Path::new(&format!("{dir}/libtorch_cuda.so")).exists() {
            println!("cargo:rustc-link-arg=-ltorch_cuda");
        }
        println!("cargo:rustc-link-arg=-Wl,--as-needed");
    }
}

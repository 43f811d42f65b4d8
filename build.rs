//! Build script: how the Windows exe reaches WinFsp's DLL.
//!
//! WinFsp keeps `winfsp-x64.dll` in its own `bin\` directory, off the loader path, and a
//! machine without WinFsp has no such DLL at all. An exe that imports it the ordinary way
//! cannot start there, not even for `--version` or `scan`. So the DLL is a *delay* import:
//! the loader resolves it only when the first WinFsp function is called, which happens after
//! `mount` has loaded it from WinFsp's install directory (`src/winfsp/sys.rs`).
//!
//! Invariant: on Windows targets, nothing links `winfsp-x64.dll` as an ordinary import.
//! - MSVC: `/DELAYLOAD` plus `delayimp.lib`, as the winfsp crate documents for its
//!   `delayload` feature (winfsp-sys supplies the import library).
//! - GNU (MinGW): a delay-import library made by `dlltool --output-delaylib` from the export
//!   list in `src/winfsp/winfsp-x64.def`; MinGW's `__delayLoadHelper2` lives in libmingwex,
//!   which every MinGW link includes. The winfsp crate is built with its `docsrs` feature
//!   there (no link directives of its own), so this library is the only way in.
//!
//! Other targets: nothing to do.

use std::env;
use std::path::PathBuf;
use std::process::Command;

const DEF: &str = "src/winfsp/winfsp-x64.def";

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed={DEF}");
    println!("cargo:rerun-if-env-changed=DLLTOOL");
    let os = env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let target_env = env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    let arch = env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    if os != "windows" {
        return;
    }
    if arch != "x86_64" {
        // WinFsp ships x86 and ARM64 DLLs too, but only x64 is built and tested.
        panic!("hfcachefs builds for Windows on x86_64 only (target arch {arch})");
    }
    match target_env.as_str() {
        "msvc" => {
            println!("cargo:rustc-link-lib=dylib=delayimp");
            println!("cargo:rustc-link-arg=/DELAYLOAD:winfsp-x64.dll");
        }
        "gnu" => {
            let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
            let lib = out.join("libwinfsp-x64-delay.a");
            let tool = env::var("DLLTOOL").unwrap_or_else(|_| "x86_64-w64-mingw32-dlltool".into());
            let status = Command::new(&tool)
                .args(["--machine", "i386:x86-64", "--dllname", "winfsp-x64.dll"])
                .arg("--def")
                .arg(DEF)
                .arg("--output-delaylib")
                .arg(&lib)
                .status()
                .unwrap_or_else(|e| panic!("{tool}: {e} (MinGW-w64 binutils are needed)"));
            assert!(status.success(), "{tool} failed: {status}");
            // As a link argument, not `-l`: GNU ld resolves from an archive only symbols that
            // are undefined when it reaches it, and rustc puts a package's `-l` libraries
            // before dependency rlibs such as winfsp's (which call WinFsp) in a test
            // binary's link; link arguments come last. Applies to every target of this
            // package (bins, tests, examples).
            // The delay-load helper (libmingwex) and what it calls (kernel32) follow it, for
            // the same reason.
            println!("cargo:rustc-link-arg={}", lib.display());
            println!("cargo:rustc-link-arg=-lmingwex");
            println!("cargo:rustc-link-arg=-lkernel32");
        }
        other => panic!("unsupported Windows target environment {other:?}"),
    }
}

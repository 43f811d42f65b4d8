//! WinFsp's DLL and the few Win32 calls the front end makes outside WinFsp: loading the DLL
//! (a delay import, see `build.rs`) from where WinFsp's installer put it, and turning the
//! SDDL every entry carries into a security descriptor.
//!
//! Invariants: no WinFsp function is called before [`load_winfsp`] succeeded (a machine
//! without WinFsp gets a message, never a delay-load fault); every `unsafe` call here is
//! given NUL-terminated wide strings and buffers of the sizes it is told.

use std::ffi::c_void;
use std::path::Path;

/// The Win32 calls made here and by the mount lifecycle, as `windows-sys` declares them.
pub(super) mod ffi {
    pub use windows_sys::Win32::Foundation::LocalFree;
    pub use windows_sys::Win32::Security::Authorization::{
        ConvertStringSecurityDescriptorToSecurityDescriptorW, SDDL_REVISION_1,
    };
    pub use windows_sys::Win32::System::Console::SetConsoleCtrlHandler;
    pub use windows_sys::Win32::System::LibraryLoader::LoadLibraryW;
    pub use windows_sys::Win32::System::Registry::{
        HKEY_LOCAL_MACHINE, RRF_RT_REG_SZ, RegGetValueW,
    };
}

fn wide_z(s: &str) -> Vec<u16> {
    s.encode_utf16().chain(std::iter::once(0)).collect()
}

/// The self-relative security descriptor for an SDDL string.
pub fn security_descriptor(sddl: &str) -> std::io::Result<Vec<u8>> {
    let w = wide_z(sddl);
    let mut psd: *mut c_void = std::ptr::null_mut();
    let mut len = 0u32;
    // SAFETY: `w` is NUL-terminated; the out-parameters are valid; on success `psd` points
    // to `len` bytes allocated with LocalAlloc, which we copy and free exactly once.
    unsafe {
        if ffi::ConvertStringSecurityDescriptorToSecurityDescriptorW(
            w.as_ptr(),
            ffi::SDDL_REVISION_1,
            &mut psd,
            &mut len,
        ) == 0
        {
            return Err(std::io::Error::last_os_error());
        }
        let out = std::slice::from_raw_parts(psd.cast::<u8>(), len as usize).to_vec();
        ffi::LocalFree(psd);
        Ok(out)
    }
}

/// The line `mount` ends with where WinFsp is missing.
const NO_WINFSP: &str = "WinFsp is not installed (winfsp-x64.dll not found in WinFsp's install \
     directory): install WinFsp 2.x from https://winfsp.dev/rel/, then run mount again";

/// Where WinFsp says it is installed: `InstallDir` under `HKLM\SOFTWARE\WOW6432Node\WinFsp`
/// (its installer is 32-bit and writes there) or `HKLM\SOFTWARE\WinFsp`.
fn winfsp_install_dir() -> Option<String> {
    for key in ["SOFTWARE\\WOW6432Node\\WinFsp", "SOFTWARE\\WinFsp"] {
        let (k, v) = (wide_z(key), wide_z("InstallDir"));
        let mut buf = vec![0u16; 1024];
        let mut bytes = (buf.len() * 2) as u32;
        // SAFETY: key and value names are NUL-terminated; `buf` has `bytes` writable bytes.
        let rc = unsafe {
            ffi::RegGetValueW(
                ffi::HKEY_LOCAL_MACHINE,
                k.as_ptr(),
                v.as_ptr(),
                ffi::RRF_RT_REG_SZ,
                std::ptr::null_mut(),
                buf.as_mut_ptr().cast::<c_void>(),
                &mut bytes,
            )
        };
        if rc == 0 {
            // `bytes` counts the terminating NUL.
            buf.truncate((bytes as usize / 2).saturating_sub(1));
            return Some(String::from_utf16_lossy(&buf));
        }
    }
    None
}

/// Loads WinFsp's DLL before any WinFsp function is called: the exe imports it as a delay
/// import (`build.rs`), whose loader then finds this already loaded module by its name.
/// Tried in WinFsp's documented order: its install directory from the registry, then the
/// loader's search path (a DLL beside the exe). No WinFsp function runs before this succeeds,
/// so a machine without WinFsp gets [`NO_WINFSP`] instead of a delay-load fault.
pub fn load_winfsp() -> Result<(), String> {
    let installed =
        winfsp_install_dir().map(|dir| Path::new(&dir).join("bin").join("winfsp-x64.dll"));
    let mut broken = None;
    for dll in installed
        .iter()
        .map(|p| p.as_path())
        .chain([Path::new("winfsp-x64.dll")])
    {
        let w = wide_z(&dll.to_string_lossy());
        // SAFETY: `w` is a NUL-terminated path; loading WinFsp's DLL runs no code of ours.
        if !unsafe { ffi::LoadLibraryW(w.as_ptr()) }.is_null() {
            log::debug!("WinFsp: loaded {}", dll.display());
            return Ok(());
        }
        if broken.is_none() {
            broken = Some((dll.to_path_buf(), std::io::Error::last_os_error()));
        }
    }
    match (installed, broken) {
        // The registry names an install whose DLL does not load: a damaged installation.
        (Some(_), Some((dll, e))) => Err(format!(
            "WinFsp's DLL {} does not load ({e}): repair or reinstall WinFsp 2.x from \
             https://winfsp.dev/rel/, then run mount again",
            dll.display()
        )),
        _ => Err(NO_WINFSP.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::winfsp::attrs;

    #[test]
    fn sddl_converts_to_a_descriptor() {
        for ro in [false, true] {
            let sd = security_descriptor(attrs::sddl(ro)).expect("valid SDDL");
            // A self-relative SECURITY_DESCRIPTOR starts with revision 1 and the
            // SE_SELF_RELATIVE control bit (0x8000).
            assert_eq!(sd[0], 1);
            assert_ne!(u16::from_le_bytes([sd[2], sd[3]]) & 0x8000, 0);
        }
    }
}

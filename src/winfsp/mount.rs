//! The lifecycle of a WinFsp mount (the Windows counterpart of `src/mount.rs`): loading
//! WinFsp, building the volume, mounting at a drive letter or directory, serving until
//! Ctrl-C / Ctrl-Break / the launcher stops it, and unmounting. The request handling itself
//! is the adapter's ([`super::adapter`]).
//!
//! Invariants: a failed mount leaves nothing changed (an empty directory mountpoint removed
//! for WinFsp comes back); the volume carries a UNC prefix of its own, so it is a network
//! volume (Explorer deletes permanently) and two mounts never share a prefix.

use std::path::Path;
use std::sync::{Condvar, Mutex, OnceLock};

use winfsp::host::{FileSystemHost, VolumeParams};

use super::adapter::HfFs;
use super::attrs;
use super::sys::{load_winfsp, security_descriptor};
use crate::config::MountConfig;
use crate::store::Store;
use crate::view::CacheView;

/// What `hfcachefs mount` needs on Windows beyond the view's configuration.
#[derive(Clone, Debug, Default)]
pub struct MountOptions {
    /// Log WinFsp's own debug output.
    pub debug: bool,
}

/// The UNC prefix the volume carries: `\hfcachefs\<mountpoint>` (`H:` gives
/// `\hfcachefs\H`; characters other than ASCII letters and digits become `-`), one per
/// mount so that two mounts on one machine do not share a prefix. With a prefix WinFsp makes
/// a network volume (`WinFsp.Net`), which Windows treats as a network drive: Explorer
/// deletes permanently instead of moving to a `$RECYCLE.BIN` at the root of the shared cache.
pub fn volume_prefix(mountpoint: &Path) -> String {
    let mp = mountpoint.to_string_lossy();
    let name: String = mp
        .trim_end_matches([':', '\\', '/'])
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let name = name.trim_matches('-');
    let name = if name.is_empty() { "hub" } else { name };
    let tail = &name[name.len().saturating_sub(64)..];
    format!("\\hfcachefs\\{tail}")
}

/// The volume as WinFsp presents it (see `docs/WINDOWS.md`, *What the Windows client sees*).
fn volume_params(read_only: bool, ttl_ms: u32, prefix: &str) -> VolumeParams {
    let mut vp = VolumeParams::new();
    vp.sector_size(4096)
        .sectors_per_allocation_unit(1)
        .max_component_length(255)
        .volume_serial_number(0x4846_4346)
        .file_info_timeout(ttl_ms)
        .case_sensitive_search(false)
        .case_preserved_names(true)
        .unicode_on_disk(true)
        .persistent_acls(true)
        // Reparse points on, with WinFsp's access check of symlink creation: a client
        // without the right to create symbolic links gets `STATUS_PRIVILEGE_NOT_HELD` from
        // WinFsp's driver, as from NTFS (WinError 1314: huggingface_hub then writes copies);
        // one with it gets its link stored in the store (`set_reparse_point`). Nothing shown
        // is ever a reparse point.
        .reparse_points(true)
        .reparse_points_access_check(true)
        .named_streams(false)
        .read_only_volume(read_only)
        // Every handle's cleanup reaches the adapter (a local round trip, not one to the
        // store): it releases the hub lock a handle holds in the store.
        .post_cleanup_when_modified_only(false)
        .pass_query_directory_pattern(true)
        .prefix(prefix)
        .filesystem_name("hfcachefs");
    vp
}

static STOP: OnceLock<(Mutex<bool>, Condvar)> = OnceLock::new();

unsafe extern "system" fn on_console_event(_event: u32) -> i32 {
    if let Some((m, cv)) = STOP.get() {
        *m.lock().unwrap_or_else(|e| e.into_inner()) = true;
        cv.notify_all();
    }
    1
}

/// Mounts `source` at `mountpoint` (a drive letter such as `H:`, or a directory that does
/// not exist yet) and serves until Ctrl-C, Ctrl-Break or the WinFsp launcher stops it.
pub fn run(
    source: &Path,
    mountpoint: &Path,
    cfg: &MountConfig,
    opts: &MountOptions,
) -> Result<(), String> {
    load_winfsp()?;
    let store = Store::open_root(source).map_err(|e| e.to_string())?;
    let read_only = cfg.view.read_only;
    let sd = security_descriptor(attrs::sddl(read_only))
        .map_err(|e| format!("security descriptor: {e}"))?;
    let fs = HfFs::new(CacheView::new(store, cfg.view.clone()), read_only, sd);
    let ttl_ms = u32::try_from(cfg.view.attr_ttl.as_millis()).unwrap_or(u32::MAX);
    let vp = volume_params(read_only, ttl_ms, &volume_prefix(mountpoint));
    let _ = opts.debug;
    // Creating the file system opens WinFsp's driver: this is where a machine with the DLL
    // but no working driver (not installed, not started, or no kernel as under wine) stops.
    let mut host: FileSystemHost<HfFs> = FileSystemHost::new(vp, fs).map_err(|e| {
        format!(
            "WinFsp's driver did not answer (NTSTATUS 0x{:08X}): install or repair WinFsp 2.x \
             from https://winfsp.dev/rel/ (a reboot may be needed), then run mount again",
            // The host reports the NTSTATUS as an HRESULT with the FACILITY_NT bit set.
            (e.code().0 as u32) & !0x1000_0000
        )
    })?;
    let mp = mountpoint.as_os_str();
    let is_drive = mp.len() == 2 && mp.to_string_lossy().ends_with(':');
    let removed = !is_drive && mountpoint.is_dir();
    if removed {
        // WinFsp creates a directory mountpoint itself: an existing empty one is removed.
        std::fs::remove_dir(mountpoint).map_err(|e| {
            format!(
                "{}: {e} (a directory mountpoint must be empty or not exist)",
                mountpoint.display()
            )
        })?;
    }
    if let Err(e) = host.mount(mp) {
        if removed {
            // Nothing left changed by a failed mount: the empty directory comes back.
            let _ = std::fs::create_dir(mountpoint);
        }
        return Err(format!("mount {}: {e:?}", mountpoint.display()));
    }
    host.start().map_err(|e| format!("start: {e:?}"))?;
    log::info!(
        "mounted {} at {} ({})",
        source.display(),
        mountpoint.display(),
        if read_only { "ro" } else { "rw" }
    );
    let (m, cv) = STOP.get_or_init(|| (Mutex::new(false), Condvar::new()));
    // SAFETY: `on_console_event` is a valid handler for the life of the process.
    unsafe { super::sys::ffi::SetConsoleCtrlHandler(Some(on_console_event), 1) };
    let mut stop = m.lock().unwrap_or_else(|e| e.into_inner());
    while !*stop {
        stop = cv.wait(stop).unwrap_or_else(|e| e.into_inner());
    }
    drop(stop);
    log::info!("unmounting {}", mountpoint.display());
    host.stop();
    host.unmount();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Explorer deletes permanently on network volumes only: the volume carries a UNC
    /// prefix, which makes WinFsp create it as a network volume (`WinFsp.Net`). Symlink
    /// creation is checked by WinFsp's driver for the client's right (reparse points with
    /// access check), so a client without it gets `STATUS_PRIVILEGE_NOT_HELD`.
    #[test]
    fn the_volume_is_a_network_volume() {
        assert_eq!(volume_prefix(Path::new("H:")), "\\hfcachefs\\H");
        assert_eq!(
            volume_prefix(Path::new("C:\\mnt\\hub cache\\")),
            "\\hfcachefs\\C--mnt-hub-cache"
        );
        let prefix = volume_prefix(Path::new("H:"));
        let vp = volume_params(false, 1000, &prefix);
        let size = std::mem::size_of::<VolumeParams>();
        // SAFETY: `VolumeParams` is a `repr(transparent)` wrapper of WinFsp's
        // `FSP_FSCTL_VOLUME_PARAMS`; reading its `size` bytes is reading that struct.
        let b =
            unsafe { std::slice::from_raw_parts((&vp as *const VolumeParams).cast::<u8>(), size) };
        // Layout (WinFsp's fsctl.h): four UINT16, a UINT64, six UINT32 (the last holds the
        // flag bits), then `WCHAR Prefix[192]` at byte 40. Checked on known fields first.
        assert_eq!(u16::from_le_bytes([b[2], b[3]]), 4096, "SectorSize at 2");
        assert_eq!(
            u32::from_le_bytes([b[16], b[17], b[18], b[19]]),
            0x4846_4346,
            "VolumeSerialNumber at 16"
        );
        // The flag bits (UINT32 at 36): ReparsePoints is bit 4, ReparsePointsAccessCheck 5.
        let flags = u32::from_le_bytes([b[36], b[37], b[38], b[39]]);
        assert_eq!(
            flags & 0b11_0000,
            0b11_0000,
            "reparse points with access check"
        );
        let prefix: Vec<u16> = b[40..40 + 2 * 192]
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .take_while(|&c| c != 0)
            .collect();
        assert_eq!(String::from_utf16_lossy(&prefix), "\\hfcachefs\\H");
    }
}

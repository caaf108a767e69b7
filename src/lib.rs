//! `doorbelld`: the door side of the doorbell.
//!
//! # Layout
//!
//! | module | job |
//! |---|---|
//! | [`core`] | every call decision, sans I/O: call states, the offer gate, the ring ledger, unlock, status |
//! | [`daemon`] | the shell around the core: the `select!` loop, the ports its actions run on, their fakes |
//! | [`app`] | what runs once the configuration is loaded: a subcommand, or the daemon (the one `LinkConfig`) |
//! | [`config`] | layered configuration, validation with errors that name the key |
//! | [`media`] | GStreamer: start-up checks, device/encoder probing, one `webrtcbin` session per call |
//! | [`link`] | the WebSocket link to the hub: auth, message pump, reconnect with jittered backoff |
//! | [`gpio`] | button, door strike, status LED and PIR behind small traits; rppal and simulated backends |
//! | [`chime`] | the door's own ding-dong when the hub is unreachable |
//! | [`missed`] | the missed-rings file (the queue itself is [`core::ledger`]) |
//! | [`identity`] | the door's id and secret, made on first start; factory reset |
//! | [`pairing`] | door-made pairing codes, the phone's proof, the pinned phones (`phones.json`) |
//! | [`control`] | the local Unix socket behind `doorbelld press` / `status` / `hangup` |
//! | [`missed_snapshots`] | the snapshots of missed rings, kept (bounded, 0600) until uploaded |
//! | [`snapshots`] | the visitor's snapshot at each press and missed ring: take, keep, upload (tasks of their own) |
//! | [`snapshot_upload`] | the visitor's snapshot and voice message to the hub (`POST /api/snapshots`, `/api/voice`, HTTP/1 over rustls) |
//! | [`voice`] | the visitor's voice message: prompt, recording, upload, kept while the hub is away |
//! | [`service`] | systemd notifications: READY, STATUS, watchdog pings from the call loop, STOPPING |
//! | `local_first` | feature `embedded-hub`: the hub (and its TURN server) inside this process |
//! | [`cli`] | command-line definition |
//!
//! See `docs/ARCHITECTURE.md` for the path of one button press through these modules.
//!
//! Data flows one way into the call task: every thread (GStreamer, rppal interrupts, stdin, sockets) turns what
//! it sees into a typed message on a bounded channel; nothing else holds call state.

pub mod app;
pub mod chime;
pub mod cli;
pub mod config;
pub mod control;
pub mod core;
pub mod daemon;
/// Entry points of the fuzz targets (`fuzz/`) and their corpus replay. Not an API.
#[doc(hidden)]
pub mod fuzzing;
pub mod gpio;
pub mod identity;
pub mod link;
#[cfg(feature = "embedded-hub")]
pub mod local_first;
pub mod media;
pub mod missed;
pub mod missed_snapshots;
pub mod pairing;
pub mod service;
pub mod snapshot_upload;
pub mod snapshots;
pub mod voice;

/// Reported to the hub in `hello`.
pub const SOFTWARE: &str = concat!("doorbelld ", env!("CARGO_PKG_VERSION"));

/// Limit glibc to two malloc arenas.
///
/// Every call starts a fresh set of GStreamer streaming threads, and glibc gives each new
/// thread its own arena (up to 8 per core); memory freed at the end of a call stays cached in
/// those arenas. Measured with `node tests/e2e/bench.mjs`: idle RSS after 10 calls grew from
/// 15 MiB to ~85 MiB with the default and to ~53 MiB with one arena. On a 512 MiB Pi Zero 2 W
/// that difference matters more than the little lock contention two arenas cost.
pub fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; called before any thread starts.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

/// Tell the system's OpenSSL not to free its global state from an `atexit` handler.
///
/// GStreamer's DTLS elements use libcrypto (OpenSSL 3), which by default registers
/// `OPENSSL_cleanup` with `atexit`. It then runs while GStreamer's own threads (task pools,
/// libnice) are still alive, and it crashed there: the aarch64 test binaries under qemu died at
/// exit inside libcrypto (SIGSEGV, or "double free or corruption") about one run in thirty,
/// after every test had passed. The kernel takes the memory back at exit anyway; OpenSSL
/// provides `OPENSSL_INIT_NO_ATEXIT` for this. It only counts if it comes before anything else
/// initialises OpenSSL, so it is called at start-up, before GStreamer. libcrypto is opened at
/// run time (the DTLS plugin loads the same library a moment later), so building needs no
/// OpenSSL headers. Only OpenSSL 3's `libcrypto.so.3` is looked for; without it (or with
/// OpenSSL 1.1) this does nothing and the default exit cleanup stays.
pub fn skip_openssl_exit_cleanup() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            /// `include/openssl/crypto.h`.
            const OPENSSL_INIT_NO_ATEXIT: u64 = 0x0008_0000;
            type InitCrypto = unsafe extern "C" fn(u64, *const std::ffi::c_void) -> std::ffi::c_int;
            // SAFETY: dlopen/dlsym with valid C strings; the symbol, when found, is OpenSSL's
            // `int OPENSSL_init_crypto(uint64_t opts, const OPENSSL_INIT_SETTINGS *settings)`,
            // for which a null `settings` is allowed. The library handle is kept (never
            // closed), so the function stays mapped.
            unsafe {
                let lib = libc::dlopen(c"libcrypto.so.3".as_ptr(), libc::RTLD_NOW);
                if lib.is_null() {
                    return;
                }
                let symbol = libc::dlsym(lib, c"OPENSSL_init_crypto".as_ptr());
                if symbol.is_null() {
                    return;
                }
                let init = std::mem::transmute::<*mut std::ffi::c_void, InitCrypto>(symbol);
                // Its result says nothing useful here: 1 even when OpenSSL was initialised
                // before (then the option comes too late), and this runs before logging is up.
                let _ = init(OPENSSL_INIT_NO_ATEXIT, std::ptr::null());
            }
        });
    }
}

/// Give the heap memory a finished call freed back to the kernel.
///
/// A call's GStreamer threads free their buffers when its pipeline stops, but glibc keeps
/// freed pages inside its arenas. `malloc_trim` releases the free pages of every arena
/// (`madvise(MADV_DONTNEED)`), so the idle door returns toward its start-up footprint; it
/// costs a few milliseconds once per call, after the media is gone.
pub fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free heap pages to the kernel; it is thread-safe.
    unsafe {
        libc::malloc_trim(0);
    }
}

//! TorchScript models through libtorch. The contract: `forward(x)` returns logits, or a tuple
//! `(logits, features)`.
//!
//! The module is owned by a small C++ shim (`shim.cpp`), because MC-dropout needs what tch 0.26
//! cannot do: put only the `Dropout` submodules in training mode, so BatchNorm keeps using its
//! running statistics (whole-model `train()` would switch BatchNorm to batch statistics and even
//! overwrite them). Tensors cross as tch `Tensor`s.

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::path::Path;
use std::ptr::NonNull;
use std::sync::Mutex;

use tch::Tensor;
use torch_sys::C_tensor;

pub mod features;

use crate::error::InputError;

extern "C" {
    fn fs_module_load(path: *const c_char, err: *mut *mut c_char) -> *mut c_void;
    fn fs_module_free(m: *mut c_void);
    fn fs_string_free(s: *mut c_char);
    fn fs_module_set_dropout(m: *mut c_void, on: c_int, err: *mut *mut c_char) -> c_int;
    fn fs_module_forward(
        m: *mut c_void,
        input: *const C_tensor,
        out: *mut *mut C_tensor,
        err: *mut *mut c_char,
    ) -> c_int;
}

/// Takes the shim's error message (and frees it).
fn take_error(err: *mut c_char) -> String {
    if err.is_null() {
        return "unknown libtorch error".into();
    }
    // SAFETY: the shim returns a NUL-terminated string from malloc, freed here exactly once.
    let full = unsafe { CStr::from_ptr(err) }.to_string_lossy().into_owned();
    unsafe { fs_string_free(err) };
    // TorchScript errors are a traceback; the cause is its last `…Error: …` line (e.g. "RuntimeError:
    // … expected input[64, 3, 8, 8] to have 1 channels, but got 3 channels …"), else the first line.
    let lines: Vec<&str> = full.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    lines
        .iter()
        .rev()
        .find(|l| l.contains("Error: "))
        .or(lines.first())
        .map_or_else(|| "unknown libtorch error".to_string(), |l| l.to_string())
}

/// What `forward` returned.
pub struct Outputs {
    /// `(batch, classes)` logits.
    pub logits: Tensor,
    /// `(batch, dim)` penultimate features, when the model returns them.
    pub features: Option<Tensor>,
}

struct Handle(NonNull<c_void>);

// SAFETY: the module is only touched under `TorchModel::lock`, one thread at a time.
unsafe impl Send for Handle {}

/// A loaded TorchScript model (CPU), in inference mode.
pub struct TorchModel {
    /// The train flag of Dropout modules is shared module state: every call holds this lock.
    lock: Mutex<Handle>,
    /// The file it came from, for error messages.
    path: std::path::PathBuf,
}

impl TorchModel {
    /// Loads `path`; a file that is not TorchScript is an input error naming it.
    pub fn load(path: &Path) -> Result<Self, InputError> {
        let c_path = CString::new(path.as_os_str().as_encoded_bytes())
            .map_err(|_| InputError::file(path, "the path contains a NUL byte"))?;
        let mut err = std::ptr::null_mut();
        // SAFETY: valid C string; the shim returns an owned module or null with an error message.
        let raw = unsafe { fs_module_load(c_path.as_ptr(), &mut err) };
        let ptr = NonNull::new(raw)
            .ok_or_else(|| InputError::file(path, format!("not a TorchScript model ({})", take_error(err))))?;
        Ok(Self {
            lock: Mutex::new(Handle(ptr)),
            path: path.to_path_buf(),
        })
    }

    fn run(&self, handle: &Handle, x: &Tensor) -> Result<Outputs, InputError> {
        let mut out: [*mut C_tensor; 2] = [std::ptr::null_mut(); 2];
        let mut err = std::ptr::null_mut();
        // SAFETY: the handle is live (we hold the lock); `x` outlives the call; on success the
        // shim hands over ownership of `n` heap tensors, which `Tensor::from_ptr` takes.
        let n = unsafe { fs_module_forward(handle.0.as_ptr(), x.as_ptr(), out.as_mut_ptr(), &mut err) };
        if n < 1 {
            return Err(InputError::file(
                &self.path,
                format!(
                    "forward on an input of shape {:?} failed: {}",
                    x.size(),
                    take_error(err)
                ),
            ));
        }
        let logits = unsafe { Tensor::from_ptr(out[0]) };
        let features = (n > 1).then(|| unsafe { Tensor::from_ptr(out[1]) });
        Ok(Outputs { logits, features })
    }

    fn set_dropout(handle: &Handle, on: bool) -> Result<usize, InputError> {
        let mut err = std::ptr::null_mut();
        // SAFETY: live handle under the lock.
        let n = unsafe { fs_module_set_dropout(handle.0.as_ptr(), c_int::from(on), &mut err) };
        usize::try_from(n).map_err(|_| InputError::item("model", take_error(err)))
    }

    fn handle(&self) -> std::sync::MutexGuard<'_, Handle> {
        // A panic while holding the lock cannot leave the module half-switched: every path below
        // switches Dropout back before returning.
        crate::error::lock(&self.lock)
    }

    /// Runs `forward` in eval mode without gradients.
    pub fn forward(&self, x: &Tensor) -> Result<Outputs, InputError> {
        self.run(&self.handle(), x)
    }

    /// The model's last linear layer, found among its parameters: the last `weight` of shape
    /// `(c, d)` with a `bias` of shape `(c,)` beside it. `None` when the model has none (the
    /// feature-based CSFs are then left out).
    pub fn last_layer(&self) -> Option<(Tensor, Tensor)> {
        let module = tch::CModule::load(&self.path).ok()?;
        let params = module.named_parameters().ok()?;
        params.iter().rev().find_map(|(name, w)| {
            let prefix = name.strip_suffix("weight")?;
            let (_, b) = params.iter().find(|(n, _)| n.strip_suffix("bias") == Some(prefix))?;
            let (ws, bs) = (w.size(), b.size());
            (ws.len() == 2 && bs.len() == 1 && ws[0] == bs[0]).then(|| (w.detach().copy(), b.detach().copy()))
        })
    }

    /// `passes` MC-dropout forward passes: only Dropout modules sample, BatchNorm stays in eval mode.
    /// A model without a Dropout module is an error (MC-dropout would be meaningless).
    pub fn forward_mc(&self, x: &Tensor, passes: usize) -> Result<Vec<Outputs>, InputError> {
        let handle = self.handle();
        if Self::set_dropout(&handle, true)? == 0 {
            return Err(InputError::item("model", "has no Dropout module: MC-dropout needs one"));
        }
        let result = (0..passes).map(|_| self.run(&handle, x)).collect();
        Self::set_dropout(&handle, false)?;
        result
    }
}

impl Drop for TorchModel {
    fn drop(&mut self) {
        let handle = self.lock.get_mut().unwrap_or_else(|p| p.into_inner());
        // SAFETY: the module was created by fs_module_load and is freed exactly once.
        unsafe { fs_module_free(handle.0.as_ptr()) };
    }
}

/// Makes libtorch's CUDA backend available to this process and returns whether a GPU is visible.
///
/// libtorch registers CUDA when `libtorch_cuda.so` is loaded. The linker drops that library from
/// the binary (nothing names its symbols), so it is loaded here, once, on the first request for a
/// GPU — from the libtorch folder the binary was built against. It needs the NVIDIA libraries the
/// torch wheel depends on (cuBLAS, cuDNN, …, see the README); when they are missing the error
/// names the first one the loader could not find.
pub fn load_cuda() -> Result<bool, String> {
    static LOADED: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    LOADED
        .get_or_init(|| {
            let lib = Path::new(env!("FAILSCOPE_LIBTORCH_LIB")).join("libtorch_cuda.so");
            if !lib.is_file() {
                return Err(format!(
                    "{} does not exist: this libtorch was built without CUDA",
                    lib.display()
                ));
            }
            let c_path = CString::new(lib.as_os_str().as_encoded_bytes()).map_err(|e| e.to_string())?;
            // SAFETY: dlopen with a NUL-terminated path; the handle is kept for the process's life
            // (libtorch's CUDA hooks live in it), so it is never closed.
            let handle = unsafe { libc::dlopen(c_path.as_ptr(), libc::RTLD_NOW | libc::RTLD_GLOBAL) };
            if handle.is_null() {
                // SAFETY: dlerror returns a NUL-terminated message (or null) owned by libc.
                let err = unsafe { libc::dlerror() };
                let why = if err.is_null() {
                    "unknown loader error".to_string()
                } else {
                    unsafe { CStr::from_ptr(err) }.to_string_lossy().into_owned()
                };
                return Err(format!("cannot load {}: {why}", lib.display()));
            }
            Ok(())
        })
        .clone()?;
    Ok(tch::Cuda::is_available())
}

//! Reading one array from an `.npz` file (FD-Shifts stores each under `arr_0`), any float or int
//! dtype (HEAD writes float16 dist files), upcast to `f64`, with shape checks that name the file.

use std::path::Path;

use npyz::npz::NpzArchive;

use crate::error::InputError;

/// A dense array read from disk: shape and row-major `f64` data.
#[derive(Debug, Clone, PartialEq)]
pub struct Array {
    /// Shape, outermost first.
    pub shape: Vec<usize>,
    /// Row-major data.
    pub data: Vec<f64>,
}

impl Array {
    /// Checks the number of dimensions, naming the file and the expected layout on failure.
    pub fn expect_ndim(&self, path: &Path, ndim: usize, layout: &str) -> Result<(), InputError> {
        if self.shape.len() == ndim {
            Ok(())
        } else {
            Err(InputError::file(
                path,
                format!("array has shape {:?}, expected {layout}", self.shape),
            ))
        }
    }

    /// Checks the first dimension against the number of rows of `raw_output`.
    pub fn expect_rows(&self, path: &Path, rows: usize, layout: &str) -> Result<(), InputError> {
        if self.shape.first() == Some(&rows) {
            Ok(())
        } else {
            Err(InputError::file(
                path,
                format!(
                    "array has shape {:?}, expected {layout} with {rows} rows like the raw output",
                    self.shape
                ),
            ))
        }
    }
}

type Member<'a> = npyz::NpyFile<npyz::zip::read::ZipFile<'a>>;

/// Opens member `key` of the archive at `path` and hands it, with its shape and dtype string
/// (`<f8`, `|u1`, …), to `f`. Errors name the file and the member.
fn with_member<T>(
    path: &Path,
    key: &str,
    f: impl FnOnce(Member<'_>, Vec<usize>, &str) -> Result<T, InputError>,
) -> Result<T, InputError> {
    let mut archive =
        NpzArchive::open(path).map_err(|e| InputError::file(path, format!("not a readable .npz archive ({e})")))?;
    let names: Vec<String> = archive.array_names().map(String::from).collect();
    let npy = archive
        .by_name(key)
        .map_err(|e| InputError::file(path, format!("array '{key}' is corrupt ({e})")))?
        .ok_or_else(|| {
            InputError::file(
                path,
                format!("no array '{key}' in the archive (found: {})", names.join(", ")),
            )
        })?;
    let shape: Vec<usize> = npy.shape().iter().map(|&d| d as usize).collect();
    let dtype = match npy.dtype() {
        npyz::DType::Plain(ts) => ts.to_string(),
        other => {
            return Err(InputError::file(
                path,
                format!("array '{key}' has dtype {other:?}, expected a plain number type"),
            ))
        }
    };
    f(npy, shape, &dtype)
}

fn check_len(path: &Path, key: &str, len: usize, shape: &[usize]) -> Result<(), InputError> {
    if len == shape.iter().product::<usize>() {
        Ok(())
    } else {
        Err(InputError::file(
            path,
            format!("array '{key}' holds {len} values for shape {shape:?}"),
        ))
    }
}

/// Reads the array `key` (FD-Shifts: `arr_0`) of `path`, any float or integer dtype, as `f64`.
pub fn read(path: &Path, key: &str) -> Result<Array, InputError> {
    with_member(path, key, |npy, shape, dtype| {
        let corrupt = |e: std::io::Error| InputError::file(path, format!("array '{key}' is corrupt ({e})"));
        let data: Vec<f64> = match &dtype[1..] {
            "f8" => npy.into_vec::<f64>().map_err(corrupt)?,
            "f4" => npy
                .into_vec::<f32>()
                .map_err(corrupt)?
                .into_iter()
                .map(f64::from)
                .collect(),
            "f2" => npy
                .into_vec::<half::f16>()
                .map_err(corrupt)?
                .into_iter()
                .map(f64::from)
                .collect(),
            "i8" => npy
                .into_vec::<i64>()
                .map_err(corrupt)?
                .into_iter()
                .map(|v| v as f64)
                .collect(),
            "i4" => npy
                .into_vec::<i32>()
                .map_err(corrupt)?
                .into_iter()
                .map(f64::from)
                .collect(),
            "u1" => npy
                .into_vec::<u8>()
                .map_err(corrupt)?
                .into_iter()
                .map(f64::from)
                .collect(),
            "b1" => npy
                .into_vec::<bool>()
                .map_err(corrupt)?
                .into_iter()
                .map(|b| f64::from(u8::from(b)))
                .collect(),
            other => {
                return Err(InputError::file(
                    path,
                    format!("array '{key}' has dtype {other}, expected a float or integer type"),
                ))
            }
        };
        check_len(path, key, data.len(), &shape)?;
        Ok(Array { shape, data })
    })
}

/// Every array of `path`, in the order they are stored (numpy's `NpzFile.files`), as `f64`.
pub fn read_all(path: &Path) -> Result<Vec<(String, Array)>, InputError> {
    let mut archive =
        NpzArchive::open(path).map_err(|e| InputError::file(path, format!("not a readable .npz archive ({e})")))?;
    // `array_names` iterates a hash map; the zip's central directory holds the stored order.
    let zip = archive.zip_archive();
    let names = (0..zip.len())
        .map(|i| {
            zip.by_index_raw(i)
                .map(|f| f.name().to_string())
                .map_err(|e| InputError::file(path, format!("not a readable .npz archive ({e})")))
        })
        .collect::<Result<Vec<String>, InputError>>()?
        .into_iter()
        .filter_map(|f| npyz::npz::array_name_from_file_name(&f).map(String::from))
        .collect::<Vec<String>>();
    names.into_iter().map(|n| read(path, &n).map(|a| (n, a))).collect()
}

/// An 8-bit array (images).
#[derive(Debug, Clone, PartialEq)]
pub struct ArrayU8 {
    /// Shape, outermost first.
    pub shape: Vec<usize>,
    /// Row-major data.
    pub data: Vec<u8>,
}

/// Reads the `uint8` array `key` of `path` (image data).
pub fn read_u8(path: &Path, key: &str) -> Result<ArrayU8, InputError> {
    with_member(path, key, |npy, shape, dtype| {
        if &dtype[1..] != "u1" {
            return Err(InputError::file(
                path,
                format!("array '{key}' has dtype {dtype}, expected uint8 images"),
            ));
        }
        let data = npy
            .into_vec::<u8>()
            .map_err(|e| InputError::file(path, format!("array '{key}' is corrupt ({e})")))?;
        check_len(path, key, data.len(), &shape)?;
        Ok(ArrayU8 { shape, data })
    })
}

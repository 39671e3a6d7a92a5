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
    let data_bytes = member_data_bytes(&mut archive, key).map_err(|problem| InputError::file(path, problem))?;
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
    let (dtype, item) = match npy.dtype() {
        npyz::DType::Plain(ts) => (ts.to_string(), ts.size_field()),
        other => {
            return Err(InputError::file(
                path,
                format!("array '{key}' has dtype {other:?}, expected a plain number type"),
            ))
        }
    };
    if !matches!(dtype.as_bytes().get(1), Some(b'f' | b'i' | b'u' | b'b')) {
        return Err(InputError::file(
            path,
            format!("array '{key}' has dtype {dtype}, expected a float or integer type"),
        ));
    }
    if npy.order() == npyz::Order::Fortran {
        return Err(InputError::file(
            path,
            format!("array '{key}' is stored in Fortran (column-major) order: save it with np.ascontiguousarray"),
        ));
    }
    // The header's shape must account for exactly the bytes that follow it: a shape larger than the
    // data would make the reader allocate for values that are not there (a bomb), a smaller one
    // would silently drop data.
    let declared = shape
        .iter()
        .try_fold(1u64, |n, &d| n.checked_mul(d as u64))
        .and_then(|n| n.checked_mul(item));
    if declared != Some(data_bytes) {
        return Err(InputError::file(
            path,
            format!("array '{key}' declares shape {shape:?} of {dtype}, but holds {data_bytes} bytes of data"),
        ));
    }
    f(npy, shape, &dtype)
}

/// The longest `.npy` header text read (numpy writes under 200 bytes for any plain array).
const MAX_HEADER: u64 = 1 << 16;

/// The bytes of member `key`'s data: its uncompressed size less the `.npy` header (format 1.0:
/// 10 bytes + header length; 2.0 and 3.0: 12 + header length). `Err` names what is wrong.
fn member_data_bytes<R: std::io::Read + std::io::Seek>(archive: &mut NpzArchive<R>, key: &str) -> Result<u64, String> {
    use std::io::Read;
    let zip = archive.zip_archive();
    let Ok(mut entry) = zip.by_name(&format!("{key}.npy")) else {
        // A missing member is reported with the archive's names by the caller.
        return Ok(0);
    };
    let size = entry.size();
    let mut head = [0u8; 12];
    entry
        .read_exact(&mut head[..10])
        .map_err(|e| format!("array '{key}' is corrupt ({e})"))?;
    if &head[..6] != b"\x93NUMPY" {
        return Err(format!("array '{key}' is not an .npy array (no NUMPY magic)"));
    }
    let (prefix, text_len) = match head[6] {
        1 => (10, u64::from(u16::from_le_bytes([head[8], head[9]]))),
        2 | 3 => {
            entry
                .read_exact(&mut head[10..12])
                .map_err(|e| format!("array '{key}' is corrupt ({e})"))?;
            (
                12,
                u64::from(u32::from_le_bytes([head[8], head[9], head[10], head[11]])),
            )
        }
        v => return Err(format!("array '{key}' has .npy format version {v}, expected 1, 2 or 3")),
    };
    if text_len > MAX_HEADER {
        return Err(format!(
            "array '{key}' has a {text_len}-byte header, more than any array needs"
        ));
    }
    let header = prefix + text_len;
    // The shape, read here because the parser below multiplies it unchecked (a shape whose
    // product overflows would panic or wrap there).
    let mut text = vec![0u8; text_len as usize];
    entry
        .read_exact(&mut text)
        .map_err(|e| format!("array '{key}' is corrupt ({e})"))?;
    let text = String::from_utf8_lossy(&text);
    if text.contains("'|O'") || text.contains("'O'") {
        return Err(format!(
            "array '{key}' has dtype object (pickled Python objects), expected a float or integer type"
        ));
    }
    if let Some(dims) = text
        .split_once("'shape':")
        .and_then(|(_, rest)| rest.split_once('('))
        .and_then(|(_, rest)| rest.split_once(')'))
        .map(|(dims, _)| dims)
    {
        let product = dims
            .split(',')
            .map(str::trim)
            .filter(|d| !d.is_empty())
            .try_fold(16u64, |n, d| d.parse::<u64>().ok().and_then(|d| n.checked_mul(d)));
        if product.is_none() {
            return Err(format!(
                "array '{key}' declares the shape ({dims}), which no file can hold"
            ));
        }
    }
    size.checked_sub(header)
        .ok_or_else(|| format!("array '{key}' is shorter than its own header"))
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

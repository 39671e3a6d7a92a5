//! What server and browser must agree on beyond the JSON types of [`crate::api`]: the binary
//! column and coordinate buffers (little-endian `f32` and `u16`), the `x-failscope-*` headers that
//! describe them, the percent-encoded categories header, and the defaults both sides fall back to.
//!
//! The store's blobs use the same `f32` codec, so a value read from SQLite is sent unchanged.

/// Header of a binary column: `f32` or `u16`.
pub const DTYPE_HEADER: &str = "x-failscope-dtype";
/// Header of an embedding result: `rows,dims` of the row-major `f32` buffer.
pub const SHAPE_HEADER: &str = "x-failscope-shape";
/// Header of a categorical column: its categories as percent-encoded JSON (index = code; code 0 is
/// `(none)`), see [`encode_categories`].
pub const CATEGORIES_HEADER: &str = "x-failscope-categories";

/// Rows matched by `GET /api/studies/{id}/matches/{other}`.
pub const MATCHED_HEADER: &str = "x-failscope-matched";

/// `u32`s as little-endian bytes.
pub fn u32_bytes(values: impl IntoIterator<Item = u32>) -> Vec<u8> {
    values.into_iter().flat_map(u32::to_le_bytes).collect()
}

/// Little-endian bytes as `u32`s (`None` unless a whole number of them).
pub fn u32s(bytes: &[u8]) -> Option<Vec<u32>> {
    bytes.len().is_multiple_of(4).then(|| {
        bytes
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect()
    })
}

/// The CSF used when a request names none: maximum softmax response, FD-Shifts' baseline.
pub const DEFAULT_CSF: &str = "det_mcp";
/// Coverage of the i.i.d. test set whose confidence threshold defines a *silent* failure (a wrong
/// prediction at or above the confidence that keeps 95 % of the i.i.d. set).
pub const SILENT_FAILURE_COVERAGE: f64 = 0.95;

/// Little-endian bytes of `values`.
pub fn f32_bytes(values: impl IntoIterator<Item = f32>) -> Vec<u8> {
    values.into_iter().flat_map(f32::to_le_bytes).collect()
}

/// The `f32`s of a little-endian buffer; `None` when its length is not a multiple of 4.
pub fn f32s(bytes: &[u8]) -> Option<Vec<f32>> {
    bytes.len().is_multiple_of(4).then(|| {
        bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect()
    })
}

/// Little-endian `u16` codes of `values`, each clamped to `0..=u16::MAX`.
pub fn u16_bytes(values: impl IntoIterator<Item = i64>) -> Vec<u8> {
    values
        .into_iter()
        .flat_map(|v| (v.clamp(0, i64::from(u16::MAX)) as u16).to_le_bytes())
        .collect()
}

/// The `u16`s of a little-endian buffer; `None` when its length is odd.
pub fn u16s(bytes: &[u8]) -> Option<Vec<u16>> {
    bytes.len().is_multiple_of(2).then(|| {
        bytes
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect()
    })
}

/// `rows,dims` for [`SHAPE_HEADER`].
pub fn shape(rows: usize, dims: usize) -> String {
    format!("{rows},{dims}")
}

/// `(rows, dims)` from a [`SHAPE_HEADER`] value.
pub fn parse_shape(value: &str) -> Option<(usize, usize)> {
    let (r, d) = value.split_once(',')?;
    Some((r.trim().parse().ok()?, d.trim().parse().ok()?))
}

/// Percent-encodes `s`: ASCII letters, digits and the bytes of `keep` stay, every other byte
/// becomes `%XX`. Shared by the categories header and the view state's query string.
pub fn percent_encode(s: &str, keep: &[u8]) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || keep.contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The bytes of a percent-encoded `s` (`+` as a space when `plus_is_space`, as in query
/// strings); `None` at a `%` not followed by two hex digits.
pub fn percent_decode(s: &str, plus_is_space: bool) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = s.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    Some(out)
}

/// The categories as JSON, percent-encoded so any text is a valid header value (only ASCII
/// letters, digits and `-_.~` stay as they are).
pub fn encode_categories(categories: &[String]) -> String {
    percent_encode(&serde_json::to_string(categories).expect("strings serialise"), b"-_.~")
}

/// The categories of an [`encode_categories`] value; `None` when it is not percent-encoded JSON
/// holding a list of strings.
pub fn decode_categories(value: &str) -> Option<Vec<String>> {
    serde_json::from_slice(&percent_decode(value, false)?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codecs_round_trip_and_reject_ragged_buffers() {
        let v = [0.0f32, -1.5, f32::MAX, f32::NAN];
        let back = f32s(&f32_bytes(v)).unwrap();
        assert_eq!(back[..3], v[..3]);
        assert!(back[3].is_nan());
        assert_eq!(f32s(&[0, 0, 0]), None);
        assert_eq!(u16s(&u16_bytes([-3, 7, 70_000])), Some(vec![0, 7, u16::MAX]));
        assert_eq!(u16s(&[1]), None);
        assert_eq!(parse_shape(&shape(20_000, 3)), Some((20_000, 3)));
        assert_eq!(parse_shape("12"), None);
    }

    #[test]
    fn categories_survive_any_text() {
        let cats: Vec<String> = ["(none)", "vidir_modern", "a \"quoted\" \\ name", "Zürich,\nline", "%20"]
            .map(String::from)
            .to_vec();
        let encoded = encode_categories(&cats);
        assert!(encoded
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.~%".contains(&b)));
        assert_eq!(decode_categories(&encoded), Some(cats.clone()));
        assert_eq!(decode_categories("[]"), Some(vec![]));
        for bad in ["", "%5", "%ZZ", "[\"a\"", "[1]", "[\"a\"]x", "{}"] {
            assert_eq!(decode_categories(bad), None, "{bad:?}");
        }
    }
}

//! Image corruptions at five severities (ImageNet-C, Hendrycks & Dietterich 2019; MedMNIST-C,
//! Di Salvo et al. 2024), deterministic for a given seed. Parameters per severity are listed in
//! [`Corruption::parameter`]; dermoscopy-specific ones imitate a dermatoscope's black corners and hair.

use image::{imageops, ImageEncoder, Rgb, RgbImage};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A corruption kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Corruption {
    /// Additive Gaussian noise on [0, 1] intensities, σ per severity.
    GaussianNoise,
    /// Gaussian blur, σ in pixels relative to a 224-pixel image.
    GaussianBlur,
    /// Brighter: + c on [0, 1] intensities.
    BrightnessUp,
    /// Darker: − c.
    BrightnessDown,
    /// Lower contrast: (x − mean)·c + mean.
    Contrast,
    /// JPEG re-encoding at quality c.
    Jpeg,
    /// Down-sampling to a fraction c of the size, then nearest-neighbour up-sampling.
    Pixelate,
    /// Dermoscopy: black corners outside a circle of radius c × half the diagonal.
    BlackCorners,
    /// Dermoscopy: c dark hair-like curves.
    Hair,
}

impl Corruption {
    /// All kinds, in a fixed order (FD-Shifts orders noise sets by corruption, then severity).
    pub const ALL: [Corruption; 9] = [
        Corruption::GaussianNoise,
        Corruption::GaussianBlur,
        Corruption::BrightnessUp,
        Corruption::BrightnessDown,
        Corruption::Contrast,
        Corruption::Jpeg,
        Corruption::Pixelate,
        Corruption::BlackCorners,
        Corruption::Hair,
    ];

    /// A stable name (`gaussian_noise`, …).
    pub fn name(self) -> &'static str {
        match self {
            Corruption::GaussianNoise => "gaussian_noise",
            Corruption::GaussianBlur => "gaussian_blur",
            Corruption::BrightnessUp => "brightness_up",
            Corruption::BrightnessDown => "brightness_down",
            Corruption::Contrast => "contrast",
            Corruption::Jpeg => "jpeg",
            Corruption::Pixelate => "pixelate",
            Corruption::BlackCorners => "black_corners",
            Corruption::Hair => "hair",
        }
    }

    /// Parses [`Corruption::name`].
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.name() == s)
    }

    /// Whether it only makes sense on colour images: the dermoscopy artefacts (black corners of
    /// the scope, hair).
    pub fn colour_only(self) -> bool {
        matches!(self, Corruption::BlackCorners | Corruption::Hair)
    }

    /// Every name, for error messages.
    pub fn names() -> String {
        Self::ALL.map(Corruption::name).join(", ")
    }

    /// Parses a list of names (`all` = every kind); `field` names the option in the error.
    pub fn parse_list(names: &[String], field: &str) -> Result<Vec<Self>, crate::error::InputError> {
        if names.iter().any(|c| c == "all") {
            return Ok(Self::ALL.to_vec());
        }
        names
            .iter()
            .map(|c| {
                Self::parse(c).ok_or_else(|| {
                    crate::error::InputError::item(
                        field,
                        format!("unknown corruption {c:?} (known: all, {})", Self::names()),
                    )
                })
            })
            .collect()
    }

    /// The parameter at `severity` 1..=5 (ImageNet-C's values where it has the corruption).
    pub fn parameter(self, severity: u8) -> f64 {
        let table: [f64; 5] = match self {
            Corruption::GaussianNoise => [0.08, 0.12, 0.18, 0.26, 0.38],
            Corruption::GaussianBlur => [1.0, 2.0, 3.0, 4.0, 6.0],
            Corruption::BrightnessUp | Corruption::BrightnessDown => [0.1, 0.2, 0.3, 0.4, 0.5],
            Corruption::Contrast => [0.4, 0.3, 0.2, 0.1, 0.05],
            Corruption::Jpeg => [25.0, 18.0, 15.0, 10.0, 7.0],
            Corruption::Pixelate => [0.6, 0.5, 0.4, 0.3, 0.25],
            Corruption::BlackCorners => [0.95, 0.85, 0.75, 0.65, 0.55],
            Corruption::Hair => [2.0, 4.0, 6.0, 9.0, 12.0],
        };
        table[usize::from(severity.clamp(1, 5)) - 1]
    }

    /// Applies the corruption at `severity` (1..=5); randomness comes from `seed` alone.
    ///
    /// A greyscale image (R = G = B everywhere, as grey scans are decoded) stays greyscale: noise
    /// is drawn once per pixel rather than per channel, so the model sees the intensity noise a
    /// scanner produces, not coloured noise; what a colour codec or a drawn colour would tint
    /// (JPEG's chroma rounding, hair) is brought back to grey by the channels' mean.
    pub fn apply(self, img: &RgbImage, severity: u8, seed: u64) -> RgbImage {
        if is_grey(img) {
            let mut out = self.apply_channels(img, severity, seed, true);
            for p in out.pixels_mut() {
                let mean = (u16::from(p[0]) + u16::from(p[1]) + u16::from(p[2]) + 1) / 3;
                p.0 = [mean as u8; 3];
            }
            return out;
        }
        self.apply_channels(img, severity, seed, false)
    }

    /// [`apply`](Self::apply) with the noise drawn once per pixel when `grey`.
    fn apply_channels(self, img: &RgbImage, severity: u8, seed: u64, grey: bool) -> RgbImage {
        let c = self.parameter(severity);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let map = |img: &RgbImage, f: &mut dyn FnMut(f64) -> f64| -> RgbImage {
            let mut out = img.clone();
            for p in out.pixels_mut() {
                for ch in p.0.iter_mut() {
                    *ch = to_u8(f(f64::from(*ch) / 255.0));
                }
            }
            out
        };
        match self {
            Corruption::GaussianNoise if grey => {
                let mut out = img.clone();
                for p in out.pixels_mut() {
                    let v = to_u8(f64::from(p[0]) / 255.0 + c * normal(&mut rng));
                    p.0 = [v; 3];
                }
                out
            }
            Corruption::GaussianNoise => map(img, &mut |x| x + c * normal(&mut rng)),
            Corruption::GaussianBlur => {
                let scale = f64::from(img.width().min(img.height())) / 224.0;
                imageops::blur(img, (c * scale).max(0.3) as f32)
            }
            Corruption::BrightnessUp => map(img, &mut |x| x + c),
            Corruption::BrightnessDown => map(img, &mut |x| x - c),
            Corruption::Contrast => {
                let n = f64::from(img.width() * img.height() * 3);
                let mean = img
                    .pixels()
                    .flat_map(|p| p.0)
                    .map(|v| f64::from(v) / 255.0)
                    .sum::<f64>()
                    / n;
                map(img, &mut |x| (x - mean) * c + mean)
            }
            Corruption::Jpeg => jpeg(img, c as u8),
            Corruption::Pixelate => {
                let (w, h) = img.dimensions();
                let small = imageops::resize(
                    img,
                    ((f64::from(w) * c) as u32).max(1),
                    ((f64::from(h) * c) as u32).max(1),
                    imageops::FilterType::Triangle,
                );
                imageops::resize(&small, w, h, imageops::FilterType::Nearest)
            }
            Corruption::BlackCorners => black_corners(img, c),
            Corruption::Hair => hair(img, c as usize, &mut rng),
        }
    }
}

/// Whether every pixel has R = G = B.
fn is_grey(img: &RgbImage) -> bool {
    img.pixels().all(|p| p[0] == p[1] && p[1] == p[2])
}

fn to_u8(x: f64) -> u8 {
    (x.clamp(0.0, 1.0) * 255.0).round() as u8
}

/// A standard normal draw (Box–Muller).
fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

fn jpeg(img: &RgbImage, quality: u8) -> RgbImage {
    let mut buf = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut buf, quality)
        .write_image(img.as_raw(), img.width(), img.height(), image::ExtendedColorType::Rgb8)
        .expect("encoding an in-memory RGB image cannot fail");
    image::load_from_memory_with_format(&buf, image::ImageFormat::Jpeg)
        .expect("our own JPEG decodes")
        .to_rgb8()
}

fn black_corners(img: &RgbImage, radius: f64) -> RgbImage {
    let (w, h) = img.dimensions();
    let (cx, cy) = (f64::from(w) / 2.0, f64::from(h) / 2.0);
    let r = radius * (cx * cx + cy * cy).sqrt();
    let soft = 0.04 * r;
    let mut out = img.clone();
    for (x, y, p) in out.enumerate_pixels_mut() {
        let d = ((f64::from(x) + 0.5 - cx).powi(2) + (f64::from(y) + 0.5 - cy).powi(2)).sqrt();
        let keep = ((r - d) / soft).clamp(0.0, 1.0);
        for ch in p.0.iter_mut() {
            *ch = (f64::from(*ch) * keep).round() as u8;
        }
    }
    out
}

fn hair(img: &RgbImage, count: usize, rng: &mut ChaCha8Rng) -> RgbImage {
    let (w, h) = (f64::from(img.width()), f64::from(img.height()));
    let mut out = img.clone();
    let thickness = (w.min(h) / 150.0).max(0.6);
    for _ in 0..count {
        // A quadratic Bézier curve across the image, dark brown-black.
        let p = |rng: &mut ChaCha8Rng| (rng.random::<f64>() * w, rng.random::<f64>() * h);
        let (a, b, c) = (p(rng), p(rng), p(rng));
        let shade = 20.0 + 40.0 * rng.random::<f64>();
        let steps = (2.0 * (w + h)) as usize;
        for s in 0..=steps {
            let t = s as f64 / steps as f64;
            let x = (1.0 - t).powi(2) * a.0 + 2.0 * (1.0 - t) * t * b.0 + t * t * c.0;
            let y = (1.0 - t).powi(2) * a.1 + 2.0 * (1.0 - t) * t * b.1 + t * t * c.1;
            let r = thickness.ceil() as i64;
            for dy in -r..=r {
                for dx in -r..=r {
                    let (px, py) = (x as i64 + dx, y as i64 + dy);
                    if px < 0 || py < 0 || px >= w as i64 || py >= h as i64 {
                        continue;
                    }
                    if ((dx * dx + dy * dy) as f64).sqrt() <= thickness {
                        out.put_pixel(
                            px as u32,
                            py as u32,
                            Rgb([shade as u8, (shade * 0.8) as u8, (shade * 0.7) as u8]),
                        );
                    }
                }
            }
        }
    }
    out
}

impl std::fmt::Display for Corruption {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Corruption {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Self::parse(s).ok_or_else(|| format!("unknown corruption {s:?} (known: {})", Self::names()))
    }
}

/// A corruption applied at a severity: written `name:severity` (`gaussian_noise:3`) in the store
/// and the API, and as `["name", severity]` in `failscope_samples.json`. Parsing checks both parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "(String, u8)", into = "(String, u8)")]
pub struct Applied {
    /// The corruption.
    pub kind: Corruption,
    /// Severity, 1..=5.
    pub severity: u8,
}

impl Applied {
    /// `kind` at `severity`, which must be 1..=5.
    pub fn new(kind: Corruption, severity: u8) -> Result<Self, String> {
        if (1..=5).contains(&severity) {
            Ok(Self { kind, severity })
        } else {
            Err(format!("severity {severity} of {kind}: severities are 1 to 5"))
        }
    }
}

impl std::fmt::Display for Applied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.kind, self.severity)
    }
}

impl std::str::FromStr for Applied {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (kind, severity) = s
            .split_once(':')
            .ok_or_else(|| format!("{s:?} is not a corruption: expected name:severity, e.g. gaussian_noise:3"))?;
        let severity = severity
            .parse()
            .map_err(|_| format!("{s:?}: the severity is not a number from 1 to 5"))?;
        Self::new(kind.parse()?, severity)
    }
}

impl TryFrom<(String, u8)> for Applied {
    type Error = String;

    fn try_from((kind, severity): (String, u8)) -> Result<Self, String> {
        Self::new(kind.parse()?, severity)
    }
}

impl From<Applied> for (String, u8) {
    fn from(a: Applied) -> Self {
        (a.kind.name().to_string(), a.severity)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A dermoscopy-like blob on skin tone with a fine texture (so blur has something to smooth).
    fn test_image() -> RgbImage {
        RgbImage::from_fn(96, 72, |x, y| {
            let d = (((f64::from(x) - 48.0).powi(2) + (f64::from(y) - 36.0).powi(2)).sqrt() / 40.0).min(1.0);
            let t = if (x + y) % 2 == 0 { 25.0 } else { 0.0 };
            Rgb([
                (200.0 - 90.0 * (1.0 - d) + t) as u8,
                (150.0 - 80.0 * (1.0 - d) + t) as u8,
                (130.0 - 60.0 * (1.0 - d) + t) as u8,
            ])
        })
    }

    fn mean_abs_diff(a: &RgbImage, b: &RgbImage) -> f64 {
        a.as_raw()
            .iter()
            .zip(b.as_raw())
            .map(|(x, y)| f64::from(x.abs_diff(*y)))
            .sum::<f64>()
            / a.as_raw().len() as f64
    }

    #[test]
    fn greyscale_images_stay_greyscale_under_every_corruption() {
        // A grey gradient, as a greyscale scan (PneumoniaMNIST) is decoded.
        let grey = RgbImage::from_fn(48, 40, |x, y| {
            let v = ((x * 5 + y * 3) % 256) as u8;
            Rgb([v, v, v])
        });
        for kind in Corruption::ALL {
            for severity in [1, 3, 5] {
                let out = kind.apply(&grey, severity, 7);
                assert!(
                    out.pixels().all(|p| p[0] == p[1] && p[1] == p[2]),
                    "{kind}:{severity} tinted a greyscale image"
                );
                assert_eq!(out.dimensions(), grey.dimensions());
            }
        }
        // Noise keeps the strength of its severity (σ per pixel, not the third of the variance a
        // mean of three channels would leave); at severity 1 clipping to [0, 1] is negligible.
        let flat = RgbImage::from_pixel(64, 64, Rgb([128, 128, 128]));
        let noisy = Corruption::GaussianNoise.apply(&flat, 1, 1);
        let var = noisy
            .pixels()
            .map(|p| (f64::from(p[0]) / 255.0 - 128.0 / 255.0).powi(2))
            .sum::<f64>()
            / f64::from(64 * 64);
        let sigma = Corruption::GaussianNoise.parameter(1);
        assert!((var.sqrt() - sigma).abs() < 0.1 * sigma, "σ {} vs {sigma}", var.sqrt());
        // Colour images keep per-channel noise.
        let colour = RgbImage::from_pixel(16, 16, Rgb([200, 80, 30]));
        let out = Corruption::GaussianNoise.apply(&colour, 3, 1);
        assert!(out.pixels().any(|p| p[0] != p[1] || p[1] != p[2]));
    }

    #[test]
    fn applied_corruptions_round_trip_as_text_and_json() {
        for kind in Corruption::ALL {
            for severity in 1..=5 {
                let a = Applied::new(kind, severity).unwrap();
                assert_eq!(a.to_string().parse::<Applied>(), Ok(a));
                let json = serde_json::to_string(&a).unwrap();
                assert_eq!(json, format!("[\"{}\",{severity}]", kind.name()));
                assert_eq!(serde_json::from_str::<Applied>(&json).unwrap(), a);
            }
        }
        for bad in [
            "gaussian_noise",
            "gaussian_noise:0",
            "gaussian_noise:6",
            "fog:2",
            "jpeg:x",
            "",
        ] {
            assert!(bad.parse::<Applied>().is_err(), "{bad}");
        }
        let e = serde_json::from_str::<Applied>(r#"["fog", 2]"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown corruption \"fog\""), "{e}");
    }

    #[test]
    fn every_corruption_keeps_the_size_grows_with_severity_and_is_seeded() {
        let img = test_image();
        for kind in Corruption::ALL {
            let diffs: Vec<f64> = (1..=5).map(|s| mean_abs_diff(&img, &kind.apply(&img, s, 7))).collect();
            assert_eq!(kind.apply(&img, 3, 7).dimensions(), img.dimensions(), "{kind:?}");
            assert!(diffs[0] > 0.0, "{kind:?} changes the image: {diffs:?}");
            assert!(
                diffs[4] > diffs[0],
                "{kind:?}: severity 5 is stronger than 1: {diffs:?}"
            );
            assert_eq!(
                kind.apply(&img, 4, 7),
                kind.apply(&img, 4, 7),
                "{kind:?} is deterministic"
            );
            assert_eq!(Corruption::parse(kind.name()), Some(kind));
        }
        assert_ne!(
            Corruption::GaussianNoise.apply(&img, 2, 1),
            Corruption::GaussianNoise.apply(&img, 2, 2)
        );
    }

    #[test]
    fn brightness_and_contrast_by_hand() {
        let grey = RgbImage::from_pixel(4, 4, Rgb([100, 100, 100]));
        assert_eq!(Corruption::BrightnessUp.apply(&grey, 1, 0).get_pixel(0, 0).0, [126; 3]); // 100/255 + 0.1
        assert_eq!(Corruption::BrightnessDown.apply(&grey, 5, 0).get_pixel(0, 0).0, [0; 3]); // 0.39 − 0.5 → 0
                                                                                             // A flat image has nothing to lose in contrast.
        assert_eq!(Corruption::Contrast.apply(&grey, 5, 0), grey);
        let corners = Corruption::BlackCorners.apply(&RgbImage::from_pixel(50, 50, Rgb([200; 3])), 5, 0);
        assert_eq!(corners.get_pixel(0, 0).0, [0; 3]);
        assert_eq!(corners.get_pixel(25, 25).0, [200; 3]);
    }
}

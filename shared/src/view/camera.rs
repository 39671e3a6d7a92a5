//! The scatter's geometry, pure so it is tested natively: the [`Camera`] (pan, zoom, 3-D orbit)
//! between normalised scatter space and canvas pixels, [`normalise`] (embedding → scatter space),
//! picking ([`pick`], [`nearest`]) and box and lasso selection ([`select`], [`Region`]). The
//! browser's WebGL shader applies the same transform as [`Camera::project`].

/// Pan (in normalised scatter units), zoom, and — in 3-D — the orbit angles.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Camera {
    /// Horizontal pan.
    pub x: f32,
    /// Vertical pan.
    pub y: f32,
    /// Zoom factor (1 = the whole embedding fits).
    pub zoom: f32,
    /// Rotation about the vertical axis (radians, 3-D).
    pub yaw: f32,
    /// Rotation about the horizontal axis (radians, 3-D).
    pub pitch: f32,
}

impl Default for Camera {
    fn default() -> Self {
        Self {
            x: 0.0,
            y: 0.0,
            zoom: 1.0,
            yaw: 0.0,
            pitch: 0.0,
        }
    }
}

impl Camera {
    /// The rotation (row-major 3 × 3) of the orbit: yaw about y, then pitch about x.
    pub fn rotation(&self) -> [f32; 9] {
        let (sy, cy) = self.yaw.sin_cos();
        let (sp, cp) = self.pitch.sin_cos();
        [cy, 0.0, sy, sp * sy, cp, -sp * cy, -cp * sy, sp, cp * cy]
    }

    /// Screen-plane coordinates (before pan and zoom) of a point after the orbit rotation.
    pub fn rotate(&self, p: [f32; 3]) -> [f32; 2] {
        let r = self.rotation();
        [
            r[0] * p[0] + r[1] * p[1] + r[2] * p[2],
            r[3] * p[0] + r[4] * p[1] + r[5] * p[2],
        ]
    }

    /// Clip-space scale of the camera on a `w × h` canvas: zoom, with the shorter side spanning
    /// [-1, 1].
    pub fn scale(&self, w: f64, h: f64) -> (f32, f32) {
        let m = w.min(h).max(1.0);
        (self.zoom * (m / w.max(1.0)) as f32, self.zoom * (m / h.max(1.0)) as f32)
    }

    /// Screen-plane coordinates of a canvas pixel (CSS pixels, origin top-left).
    pub fn unproject(&self, px: f64, py: f64, w: f64, h: f64) -> (f32, f32) {
        let (sx, sy) = self.scale(w, h);
        let cx = (2.0 * px / w.max(1.0) - 1.0) as f32;
        let cy = (1.0 - 2.0 * py / h.max(1.0)) as f32;
        (cx / sx + self.x, cy / sy + self.y)
    }

    /// Canvas pixel (CSS) of screen-plane coordinates; the inverse of [`unproject`](Self::unproject).
    pub fn project(&self, p: [f32; 2], w: f64, h: f64) -> (f64, f64) {
        let (sx, sy) = self.scale(w, h);
        let cx = f64::from((p[0] - self.x) * sx);
        let cy = f64::from((p[1] - self.y) * sy);
        ((cx + 1.0) / 2.0 * w, (1.0 - cy) / 2.0 * h)
    }

    /// The SVG `matrix(a b c d e f)` taking 2-D layout coordinates to canvas pixels (no orbit):
    /// what [`project`](Self::project) does, for an overlay drawn once and moved by the camera.
    pub fn svg_matrix(&self, w: f64, h: f64) -> [f64; 6] {
        let (sx, sy) = self.scale(w, h);
        let (sx, sy) = (f64::from(sx), f64::from(sy));
        [
            sx * w / 2.0,
            0.0,
            0.0,
            -sy * h / 2.0,
            (1.0 - f64::from(self.x) * sx) * w / 2.0,
            (1.0 + f64::from(self.y) * sy) * h / 2.0,
        ]
    }

    /// Screen-plane coordinates (orbit applied, before pan and zoom) of point `i` of the `(x, y, z)`
    /// triples `xyz`.
    pub fn plane(&self, xyz: &[f32], i: usize) -> [f32; 2] {
        self.rotate([xyz[3 * i], xyz[3 * i + 1], xyz[3 * i + 2]])
    }

    /// Canvas pixel of point `i` of `xyz`.
    pub fn pixel(&self, xyz: &[f32], i: usize, w: f64, h: f64) -> (f64, f64) {
        self.project(self.plane(xyz, i), w, h)
    }

    /// Zooms by `factor` about canvas pixel `(px, py)`, which stays over the same point; the zoom
    /// stays within [`MIN_ZOOM`, `MAX_ZOOM`].
    pub fn zoom_at(&mut self, px: f64, py: f64, w: f64, h: f64, factor: f32) {
        let (ax, ay) = self.unproject(px, py, w, h);
        self.zoom = (self.zoom * factor).clamp(MIN_ZOOM, MAX_ZOOM);
        let (bx, by) = self.unproject(px, py, w, h);
        self.x += ax - bx;
        self.y += ay - by;
    }

    /// The camera (orbit kept) that frames points `rows` of `xyz`: centred on their screen-plane
    /// bounding box, zoomed so that it fills `fill` of the canvas's shorter side, within
    /// [`MIN_ZOOM`, `MAX_ZOOM`]. No rows: the camera as it is.
    pub fn framing(&self, xyz: &[f32], rows: &[usize], fill: f32) -> Camera {
        let n = xyz.len() / 3;
        let mut lo = [f32::INFINITY; 2];
        let mut hi = [f32::NEG_INFINITY; 2];
        for &i in rows.iter().filter(|&&i| i < n) {
            let p = self.plane(xyz, i);
            for d in 0..2 {
                lo[d] = lo[d].min(p[d]);
                hi[d] = hi[d].max(p[d]);
            }
        }
        if lo[0] > hi[0] {
            return *self;
        }
        let half = ((hi[0] - lo[0]).max(hi[1] - lo[1]) / 2.0).max(1e-6);
        Camera {
            x: (lo[0] + hi[0]) / 2.0,
            y: (lo[1] + hi[1]) / 2.0,
            zoom: (fill / half).clamp(MIN_ZOOM, MAX_ZOOM),
            ..*self
        }
    }

    /// `pixels` canvas pixels in screen-plane units at this zoom (the picking radius).
    pub fn plane_distance(&self, pixels: f64, w: f64, h: f64) -> f32 {
        (pixels / (w.min(h).max(1.0) / 2.0)) as f32 / self.zoom
    }
}

/// Smallest zoom (the embedding at a fifth of the canvas).
pub const MIN_ZOOM: f32 = 0.2;
/// Largest zoom.
pub const MAX_ZOOM: f32 = 500.0;

/// Scales coordinates (`n × dims`, 2 or 3) into [-0.95, 0.95] around their centre, as `(x, y, z)`
/// triples (`z = 0` for 2-D): the scatter's normalised space, which the camera starts fitting.
pub fn normalise(coords: &[f32], dims: usize) -> Vec<f32> {
    let dims = dims.clamp(1, 3);
    let n = coords.len() / dims;
    let (mut lo, mut hi) = ([f32::INFINITY; 3], [f32::NEG_INFINITY; 3]);
    for i in 0..n {
        for d in 0..dims {
            let v = coords[i * dims + d];
            lo[d] = lo[d].min(v);
            hi[d] = hi[d].max(v);
        }
    }
    let half = ((0..dims).map(|d| hi[d] - lo[d]).fold(0.0f32, f32::max) / 2.0).max(1e-9);
    let mid: [f32; 3] = std::array::from_fn(|d| if d < dims { (lo[d] + hi[d]) / 2.0 } else { 0.0 });
    (0..n)
        .flat_map(|i| {
            (0..3).map(move |d| {
                if d < dims {
                    (coords[i * dims + d] - mid[d]) / half * 0.95
                } else {
                    0.0
                }
            })
        })
        .collect()
}

/// The alpha of a point the filters leave out but the view still draws, in grey (`ghost=1`):
/// drawn, but neither picked, selected nor counted. A shown point's alpha is never this one.
pub const GHOST_ALPHA: u8 = 64;

/// Whether a point of this alpha is shown (not filtered out: neither 0 nor a ghost's).
pub fn shown_alpha(alpha: u8) -> bool {
    alpha > 0 && alpha != GHOST_ALPHA
}

/// Whether point `i` is shown: its alpha in the RGBA per point `rgba` says so (filters hide
/// points by alpha).
fn visible(rgba: &[u8], i: usize) -> bool {
    rgba.get(4 * i + 3).is_some_and(|a| shown_alpha(*a))
}

/// The visible point nearest to screen-plane position `(x, y)` within `radius` (screen-plane
/// units); the last of equally near points, which is the one drawn on top.
pub fn nearest(cam: &Camera, xyz: &[f32], rgba: &[u8], x: f32, y: f32, radius: f32) -> Option<usize> {
    let mut best = (radius * radius, None);
    for i in 0..xyz.len() / 3 {
        if !visible(rgba, i) {
            continue;
        }
        let p = cam.plane(xyz, i);
        let d = (p[0] - x).powi(2) + (p[1] - y).powi(2);
        if d <= best.0 {
            best = (d, Some(i));
        }
    }
    best.1
}

/// The visible point under canvas pixel `(px, py)` of a `w × h` canvas, within `pixels` pixels.
pub fn pick(
    cam: &Camera,
    xyz: &[f32],
    rgba: &[u8],
    (px, py): (f64, f64),
    (w, h): (f64, f64),
    pixels: f64,
) -> Option<usize> {
    let (x, y) = cam.unproject(px, py, w, h);
    nearest(cam, xyz, rgba, x, y, cam.plane_distance(pixels, w, h))
}

/// A region drawn on the canvas, in canvas pixels.
#[derive(Debug, Clone, PartialEq)]
pub enum Region {
    /// The rectangle between two corners.
    Box((f64, f64), (f64, f64)),
    /// A closed outline (the last vertex joins the first).
    Lasso(Vec<(f64, f64)>),
}

impl Region {
    /// Whether canvas pixel `(x, y)` lies in the region.
    pub fn contains(&self, x: f64, y: f64) -> bool {
        let within = |(a, b): (f64, f64), (c, d): (f64, f64)| {
            (a.min(c)..=a.max(c)).contains(&x) && (b.min(d)..=b.max(d)).contains(&y)
        };
        match self {
            Region::Box(a, b) => within(*a, *b),
            Region::Lasso(outline) => {
                let (lo, hi) = outline.iter().fold(
                    ((f64::INFINITY, f64::INFINITY), (f64::NEG_INFINITY, f64::NEG_INFINITY)),
                    |(lo, hi), &(x, y)| ((lo.0.min(x), lo.1.min(y)), (hi.0.max(x), hi.1.max(y))),
                );
                // The bounding box first: most points of a large study fail it cheaply.
                !outline.is_empty() && within(lo, hi) && inside_polygon(outline, x, y)
            }
        }
    }
}

/// The visible points whose canvas pixel lies in `region`, in row order.
pub fn select(cam: &Camera, xyz: &[f32], rgba: &[u8], (w, h): (f64, f64), region: &Region) -> Vec<usize> {
    (0..xyz.len() / 3)
        .filter(|&i| {
            visible(rgba, i) && {
                let (x, y) = cam.pixel(xyz, i, w, h);
                region.contains(x, y)
            }
        })
        .collect()
}

/// Whether `(x, y)` lies inside the closed polygon `outline` (even–odd rule; the last vertex joins
/// the first): the lasso's test, in canvas pixels.
pub fn inside_polygon(outline: &[(f64, f64)], x: f64, y: f64) -> bool {
    let mut inside = false;
    let n = outline.len();
    for i in 0..n {
        let (xi, yi) = outline[i];
        let (xj, yj) = outline[(i + n - 1) % n];
        if (yi > y) != (yj > y) && x < (xj - xi) * (y - yi) / (yj - yi) + xi {
            inside = !inside;
        }
    }
    inside
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_orbit_rotation_is_a_rotation() {
        let c = Camera {
            yaw: std::f32::consts::FRAC_PI_2,
            ..Camera::default()
        };
        // A quarter turn about the vertical axis takes depth (z) onto x.
        let p = c.rotate([0.0, 0.0, 1.0]);
        assert!((p[0] - 1.0).abs() < 1e-6 && p[1].abs() < 1e-6);
        let r = Camera {
            yaw: 0.3,
            pitch: -1.1,
            ..Camera::default()
        }
        .rotation();
        // Rows are orthonormal.
        for (a, b) in [(0, 0), (0, 1), (1, 1), (1, 2), (2, 2)] {
            let dot: f32 = (0..3).map(|k| r[3 * a + k] * r[3 * b + k]).sum();
            assert!((dot - if a == b { 1.0 } else { 0.0 }).abs() < 1e-6);
        }
    }

    #[test]
    fn project_inverts_unproject_at_any_pan_and_zoom() {
        let cam = Camera {
            x: 0.3,
            y: -0.2,
            zoom: 2.5,
            ..Camera::default()
        };
        let (w, h) = (800.0, 500.0);
        for (px, py) in [(0.0, 0.0), (400.0, 250.0), (799.0, 13.5)] {
            let (x, y) = cam.unproject(px, py, w, h);
            let (qx, qy) = cam.project([x, y], w, h);
            assert!(
                (qx - px).abs() < 1e-3 && (qy - py).abs() < 1e-3,
                "{px},{py} → {qx},{qy}"
            );
        }
        // The canvas centre shows the pan target; the shorter side spans 2 / zoom units.
        assert_eq!(cam.unproject(400.0, 250.0, w, h), (0.3, -0.2));
        let (_, top) = cam.unproject(400.0, 0.0, w, h);
        assert!((top - (-0.2 + 1.0 / 2.5)).abs() < 1e-6);
        assert!((cam.plane_distance(250.0, w, h) - 0.4).abs() < 1e-6);
    }

    #[test]
    fn zooming_keeps_the_point_under_the_cursor() {
        let mut cam = Camera::default();
        let (w, h) = (640.0, 480.0);
        let before = cam.unproject(100.0, 400.0, w, h);
        cam.zoom_at(100.0, 400.0, w, h, 1.2);
        let after = cam.unproject(100.0, 400.0, w, h);
        assert!((before.0 - after.0).abs() < 1e-6 && (before.1 - after.1).abs() < 1e-6);
        assert!((cam.zoom - 1.2).abs() < 1e-6);
        for _ in 0..100 {
            cam.zoom_at(0.0, 0.0, w, h, 1.0 / 1.2);
        }
        assert_eq!(cam.zoom, MIN_ZOOM);
    }

    #[test]
    fn framing_puts_a_group_of_points_in_view() {
        let xyz = [0.0, 0.0, 0.0, 0.5, 0.5, 0.0, 0.6, 0.3, 0.0, -0.9, -0.9, 0.0];
        let cam = Camera::default().framing(&xyz, &[1, 2], 0.8);
        assert!((cam.x - 0.55).abs() < 1e-6 && (cam.y - 0.4).abs() < 1e-6);
        // Half the larger extent is 0.1: zoom 8 makes it fill 0.8 of the shorter side.
        assert!((cam.zoom - 8.0).abs() < 1e-4);
        let (w, h) = (400.0, 300.0);
        for i in [1, 2] {
            let (px, py) = cam.pixel(&xyz, i, w, h);
            assert!(
                (0.0..=w).contains(&px) && (0.0..=h).contains(&py),
                "point {i} at {px},{py}"
            );
        }
        assert!(
            !(0.0..=w).contains(&cam.pixel(&xyz, 3, w, h).0),
            "the far point is out of view"
        );
        // One point: the largest zoom; no points: unchanged.
        assert_eq!(Camera::default().framing(&xyz, &[3], 0.8).zoom, MAX_ZOOM);
        assert_eq!(Camera::default().framing(&xyz, &[], 0.8), Camera::default());
    }

    #[test]
    fn normalise_fits_the_longest_axis_and_keeps_the_aspect() {
        let xyz = normalise(&[0.0, 0.0, 10.0, 2.0, 4.0, 1.0], 2);
        assert_eq!(xyz.len(), 9);
        // x spans 10, y spans 2: x fills [-0.95, 0.95], y keeps its proportion, z is 0.
        assert_eq!([xyz[0], xyz[3]], [-0.95, 0.95]);
        assert!((xyz[1] - -0.19).abs() < 1e-6 && (xyz[4] - 0.19).abs() < 1e-6);
        assert_eq!([xyz[2], xyz[5], xyz[8]], [0.0; 3]);
        // One point (no extent) lands at the centre.
        assert_eq!(normalise(&[5.0, 5.0, 5.0], 3), [0.0; 3]);
    }

    #[test]
    fn the_svg_matrix_projects_as_the_camera_does() {
        let cam = Camera {
            x: 0.3,
            y: -0.2,
            zoom: 2.5,
            ..Camera::default()
        };
        let (w, h) = (640.0, 480.0);
        let [a, b, c, d, e, f] = cam.svg_matrix(w, h);
        for p in [[0.0f32, 0.0], [0.7, -0.4], [-1.0, 1.0]] {
            let (px, py) = cam.project(p, w, h);
            let (x, y) = (f64::from(p[0]), f64::from(p[1]));
            assert!(
                (a * x + c * y + e - px).abs() < 1e-3 && (b * x + d * y + f - py).abs() < 1e-3,
                "{p:?}"
            );
        }
    }

    #[test]
    fn picking_finds_the_nearest_visible_point_within_the_radius() {
        let cam = Camera::default();
        let xyz = [0.0, 0.0, 0.0, 0.5, 0.5, 0.0, 0.52, 0.5, 0.0];
        let shown = [255u8; 12];
        let (w, h) = (200.0, 200.0);
        let at = |i: usize| cam.pixel(&xyz, i, w, h);
        assert_eq!(at(0), (100.0, 100.0));
        assert_eq!(pick(&cam, &xyz, &shown, at(1), (w, h), 8.0), Some(1));
        assert_eq!(pick(&cam, &xyz, &shown, (at(1).0 + 1.5, at(1).1), (w, h), 8.0), Some(2));
        // Too far, or hidden by a filter: nothing.
        assert_eq!(pick(&cam, &xyz, &shown, (10.0, 190.0), (w, h), 8.0), None);
        let mut hidden = shown;
        hidden[3] = 0;
        assert_eq!(pick(&cam, &xyz, &hidden, at(0), (w, h), 8.0), None);
        // A filtered-out point drawn in grey is not picked either.
        hidden[3] = GHOST_ALPHA;
        assert_eq!(pick(&cam, &xyz, &hidden, at(0), (w, h), 8.0), None);
        assert!(shown_alpha(GHOST_ALPHA + 1) && !shown_alpha(0));
        // In 3-D the orbit decides what lies under the cursor: a quarter turn brings depth to x.
        let deep = [0.0, 0.0, 0.5];
        let turned = Camera {
            yaw: std::f32::consts::FRAC_PI_2,
            ..Camera::default()
        };
        assert_eq!(pick(&turned, &deep, &[255; 4], (150.0, 100.0), (w, h), 2.0), Some(0));
        assert_eq!(pick(&cam, &deep, &[255; 4], (150.0, 100.0), (w, h), 2.0), None);
    }

    #[test]
    fn box_and_lasso_select_the_visible_points_they_enclose() {
        let cam = Camera::default();
        let (w, h) = (200.0, 200.0);
        // Pixels (100, 100), (150, 50), (50, 150).
        let xyz = [0.0, 0.0, 0.0, 0.5, 0.5, 0.0, -0.5, -0.5, 0.0];
        let mut rgba = [255u8; 12];
        let boxed = Region::Box((160.0, 40.0), (90.0, 110.0));
        assert_eq!(select(&cam, &xyz, &rgba, (w, h), &boxed), [0, 1]);
        rgba[7] = 0;
        assert_eq!(select(&cam, &xyz, &rgba, (w, h), &boxed), [0]);
        let triangle = Region::Lasso(vec![(40.0, 160.0), (110.0, 160.0), (40.0, 90.0)]);
        assert_eq!(select(&cam, &xyz, &[255; 12], (w, h), &triangle), [2]);
        assert!(select(&cam, &xyz, &[255; 12], (w, h), &Region::Lasso(Vec::new())).is_empty());
    }

    #[test]
    fn lasso_outlines_hold_what_they_enclose() {
        let square = [(0.0, 0.0), (10.0, 0.0), (10.0, 10.0), (0.0, 10.0)];
        assert!(inside_polygon(&square, 5.0, 5.0));
        assert!(!inside_polygon(&square, 15.0, 5.0));
        assert!(!inside_polygon(&square, 5.0, -1.0));
        // A C shape: its mouth is outside although inside the bounding box.
        let c = [
            (0.0, 0.0),
            (10.0, 0.0),
            (10.0, 3.0),
            (3.0, 3.0),
            (3.0, 7.0),
            (10.0, 7.0),
            (10.0, 10.0),
            (0.0, 10.0),
        ];
        assert!(inside_polygon(&c, 1.5, 5.0));
        assert!(!inside_polygon(&c, 6.0, 5.0));
        assert!(inside_polygon(&c, 6.0, 1.5));
        // Fewer than three vertices enclose nothing.
        assert!(!inside_polygon(&[(0.0, 0.0), (10.0, 10.0)], 5.0, 5.0));
        assert!(!inside_polygon(&[], 0.0, 0.0));
    }
}

//! The WebGL2 scatter: one draw call of `n` point sprites (positions and colours in GPU buffers),
//! a camera uniform for pan and zoom, round markers with soft edges. Picking is done on the CPU
//! against the same normalised positions.

use failscope_shared::view::Camera;
use wasm_bindgen::JsCast;
use web_sys::{HtmlCanvasElement, WebGl2RenderingContext as GL, WebGlBuffer, WebGlProgram, WebGlUniformLocation};

const VERTEX: &str = r#"#version 300 es
in vec3 a_pos;
in vec4 a_color;
uniform mat3 u_rot;
uniform vec2 u_scale;
uniform vec2 u_offset;
uniform float u_size;
out vec4 v_color;
void main() {
    vec3 p = u_rot * a_pos;
    gl_Position = vec4((p.xy - u_offset) * u_scale, 0.0, 1.0);
    gl_PointSize = u_size;
    v_color = a_color;
}"#;

const FRAGMENT: &str = r#"#version 300 es
precision mediump float;
in vec4 v_color;
out vec4 color;
void main() {
    vec2 d = gl_PointCoord - vec2(0.5);
    float r = dot(d, d);
    if (r > 0.25 || v_color.a == 0.0) discard;
    color = vec4(v_color.rgb, v_color.a * smoothstep(0.25, 0.17, r));
}"#;

/// A scatter bound to one canvas.
pub struct Scatter {
    gl: GL,
    program: WebGlProgram,
    positions: WebGlBuffer,
    colors: WebGlBuffer,
    /// A fixed random permutation of the points: drawing its first `k` entries draws an unbiased
    /// sample (level of detail while dragging).
    order: WebGlBuffer,
    vao: web_sys::WebGlVertexArrayObject,
    u_scale: Option<WebGlUniformLocation>,
    u_offset: Option<WebGlUniformLocation>,
    u_size: Option<WebGlUniformLocation>,
    u_rot: Option<WebGlUniformLocation>,
    n: i32,
}

fn shader(gl: &GL, kind: u32, src: &str) -> Result<web_sys::WebGlShader, String> {
    let s = gl.create_shader(kind).ok_or("cannot create a shader")?;
    gl.shader_source(&s, src);
    gl.compile_shader(&s);
    if gl.get_shader_parameter(&s, GL::COMPILE_STATUS).as_bool() == Some(true) {
        Ok(s)
    } else {
        Err(gl.get_shader_info_log(&s).unwrap_or_default())
    }
}

impl Scatter {
    /// Sets up WebGL2 on `canvas` (an error when the browser has none).
    pub fn new(canvas: &HtmlCanvasElement) -> Result<Self, String> {
        let opts = js_sys::Object::new();
        // Keep the drawing buffer so screenshots and pixel checks read what was drawn.
        let _ = js_sys::Reflect::set(&opts, &"preserveDrawingBuffer".into(), &true.into());
        let _ = js_sys::Reflect::set(&opts, &"antialias".into(), &false.into());
        let gl: GL = canvas
            .get_context_with_context_options("webgl2", &opts)
            .map_err(|_| "WebGL2 is not available")?
            .ok_or("WebGL2 is not available in this browser")?
            .dyn_into()
            .map_err(|_| "not a WebGL2 context")?;
        let program = gl.create_program().ok_or("cannot create a program")?;
        gl.attach_shader(&program, &shader(&gl, GL::VERTEX_SHADER, VERTEX)?);
        gl.attach_shader(&program, &shader(&gl, GL::FRAGMENT_SHADER, FRAGMENT)?);
        gl.link_program(&program);
        if gl.get_program_parameter(&program, GL::LINK_STATUS).as_bool() != Some(true) {
            return Err(gl.get_program_info_log(&program).unwrap_or_default());
        }
        let positions = gl.create_buffer().ok_or("cannot create a buffer")?;
        let order = gl.create_buffer().ok_or("cannot create a buffer")?;
        let colors = gl.create_buffer().ok_or("cannot create a buffer")?;
        let vao = gl.create_vertex_array().ok_or("cannot create a vertex array")?;
        gl.bind_vertex_array(Some(&vao));
        let pos_loc = gl.get_attrib_location(&program, "a_pos") as u32;
        gl.bind_buffer(GL::ARRAY_BUFFER, Some(&positions));
        gl.enable_vertex_attrib_array(pos_loc);
        gl.vertex_attrib_pointer_with_i32(pos_loc, 3, GL::FLOAT, false, 0, 0);
        let col_loc = gl.get_attrib_location(&program, "a_color") as u32;
        gl.bind_buffer(GL::ARRAY_BUFFER, Some(&colors));
        gl.enable_vertex_attrib_array(col_loc);
        gl.vertex_attrib_pointer_with_i32(col_loc, 4, GL::UNSIGNED_BYTE, true, 0, 0);
        Ok(Self {
            u_scale: gl.get_uniform_location(&program, "u_scale"),
            u_offset: gl.get_uniform_location(&program, "u_offset"),
            u_size: gl.get_uniform_location(&program, "u_size"),
            u_rot: gl.get_uniform_location(&program, "u_rot"),
            gl,
            program,
            positions,
            colors,
            order,
            vao,
            n: 0,
        })
    }

    /// Uploads normalised `(x, y, z)` triples (`z = 0` in 2-D).
    pub fn set_positions(&mut self, xyz: &[f32]) {
        self.gl.bind_buffer(GL::ARRAY_BUFFER, Some(&self.positions));
        let arr = js_sys::Float32Array::from(xyz);
        self.gl
            .buffer_data_with_array_buffer_view(GL::ARRAY_BUFFER, &arr, GL::STATIC_DRAW);
        self.n = (xyz.len() / 3) as i32;
        // Fisher–Yates with a fixed xorshift seed: the same sample every frame.
        let mut idx: Vec<u32> = (0..self.n as u32).collect();
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        for i in (1..idx.len()).rev() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            idx.swap(i, (state % (i as u64 + 1)) as usize);
        }
        self.gl.bind_vertex_array(Some(&self.vao));
        self.gl.bind_buffer(GL::ELEMENT_ARRAY_BUFFER, Some(&self.order));
        let arr = js_sys::Uint32Array::from(&idx[..]);
        self.gl
            .buffer_data_with_array_buffer_view(GL::ELEMENT_ARRAY_BUFFER, &arr, GL::STATIC_DRAW);
    }

    /// Uploads RGBA per point.
    pub fn set_colors(&mut self, rgba: &[u8]) {
        self.gl.bind_buffer(GL::ARRAY_BUFFER, Some(&self.colors));
        let arr = js_sys::Uint8Array::from(rgba);
        self.gl
            .buffer_data_with_array_buffer_view(GL::ARRAY_BUFFER, &arr, GL::DYNAMIC_DRAW);
    }

    /// Number of points uploaded.
    pub fn points(&self) -> usize {
        self.n as usize
    }

    /// Draws the points — all, or an unbiased sample of `budget` while the view moves — with `cam`
    /// on a `w × h` pixel canvas.
    pub fn draw(&self, cam: Camera, size: f32, w: f64, h: f64, budget: Option<usize>) {
        let gl = &self.gl;
        gl.viewport(0, 0, w as i32, h as i32);
        gl.clear_color(1.0, 1.0, 1.0, 1.0);
        gl.clear(GL::COLOR_BUFFER_BIT);
        gl.enable(GL::BLEND);
        gl.blend_func(GL::SRC_ALPHA, GL::ONE_MINUS_SRC_ALPHA);
        gl.use_program(Some(&self.program));
        let (sx, sy) = scale(cam, w, h);
        gl.uniform2f(self.u_scale.as_ref(), sx, sy);
        gl.uniform2f(self.u_offset.as_ref(), cam.x, cam.y);
        // Row-major rotation: WebGL2 accepts the transpose flag.
        gl.uniform_matrix3fv_with_f32_array(self.u_rot.as_ref(), true, &cam.rotation());
        gl.uniform1f(
            self.u_size.as_ref(),
            size * web_sys::window().map_or(1.0, |w| w.device_pixel_ratio()) as f32,
        );
        gl.bind_vertex_array(Some(&self.vao));
        let count = budget.map_or(self.n, |b| self.n.min(b as i32));
        gl.draw_elements_with_i32(GL::POINTS, count, GL::UNSIGNED_INT, 0);
    }
}

/// Clip-space scale of the camera: zoom, with the shorter canvas side spanning [-1, 1].
pub fn scale(cam: Camera, w: f64, h: f64) -> (f32, f32) {
    let m = w.min(h).max(1.0);
    (cam.zoom * (m / w.max(1.0)) as f32, cam.zoom * (m / h.max(1.0)) as f32)
}

/// Normalised scatter coordinates of a canvas pixel (CSS pixels, origin top-left).
pub fn unproject(cam: Camera, px: f64, py: f64, w: f64, h: f64) -> (f32, f32) {
    let (sx, sy) = scale(cam, w, h);
    let cx = (2.0 * px / w.max(1.0) - 1.0) as f32;
    let cy = (1.0 - 2.0 * py / h.max(1.0)) as f32;
    (cx / sx + cam.x, cy / sy + cam.y)
}

/// Screen-plane coordinates (orbit applied, before pan and zoom) of point `i` of `xyz`.
pub fn plane(cam: Camera, xyz: &[f32], i: usize) -> [f32; 2] {
    cam.rotate([xyz[3 * i], xyz[3 * i + 1], xyz[3 * i + 2]])
}

/// Canvas pixel (CSS) of screen-plane coordinates.
pub fn project(cam: Camera, p: [f32; 2], w: f64, h: f64) -> (f64, f64) {
    let (sx, sy) = scale(cam, w, h);
    let cx = f64::from((p[0] - cam.x) * sx);
    let cy = f64::from((p[1] - cam.y) * sy);
    ((cx + 1.0) / 2.0 * w, (1.0 - cy) / 2.0 * h)
}

/// Scales coordinates (`n × dims`, 2 or 3) into [-0.95, 0.95] around their centre, as `(x, y, z)`
/// triples (`z = 0` for 2-D).
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
    let mid: Vec<f32> = (0..3)
        .map(|d| if d < dims { (lo[d] + hi[d]) / 2.0 } else { 0.0 })
        .collect();
    (0..n)
        .flat_map(|i| {
            let mid = mid.clone();
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

/// The visible point whose screen-plane position is nearest to `(x, y)` within `radius`.
pub fn nearest(cam: Camera, xyz: &[f32], rgba: &[u8], x: f32, y: f32, radius: f32) -> Option<usize> {
    let mut best = (radius * radius, None);
    for i in 0..xyz.len() / 3 {
        if rgba.get(4 * i + 3) == Some(&0) {
            continue;
        }
        let p = plane(cam, xyz, i);
        let d = (p[0] - x).powi(2) + (p[1] - y).powi(2);
        if d <= best.0 {
            best = (d, Some(i));
        }
    }
    best.1
}

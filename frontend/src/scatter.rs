//! The WebGL2 scatter: one draw call of `n` point sprites (positions and colours in GPU buffers),
//! a camera uniform for pan and zoom, round markers with soft edges. Picking is done on the CPU
//! against the same normalised positions.

use failscope_shared::view::Camera;
use wasm_bindgen::JsCast;
use web_sys::{HtmlCanvasElement, WebGl2RenderingContext as GL, WebGlBuffer, WebGlProgram, WebGlUniformLocation};

const VERTEX: &str = r#"#version 300 es
in vec2 a_pos;
in vec4 a_color;
uniform vec2 u_scale;
uniform vec2 u_offset;
uniform float u_size;
out vec4 v_color;
void main() {
    gl_Position = vec4((a_pos - u_offset) * u_scale, 0.0, 1.0);
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
    u_scale: Option<WebGlUniformLocation>,
    u_offset: Option<WebGlUniformLocation>,
    u_size: Option<WebGlUniformLocation>,
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
        let colors = gl.create_buffer().ok_or("cannot create a buffer")?;
        let vao = gl.create_vertex_array().ok_or("cannot create a vertex array")?;
        gl.bind_vertex_array(Some(&vao));
        let pos_loc = gl.get_attrib_location(&program, "a_pos") as u32;
        gl.bind_buffer(GL::ARRAY_BUFFER, Some(&positions));
        gl.enable_vertex_attrib_array(pos_loc);
        gl.vertex_attrib_pointer_with_i32(pos_loc, 2, GL::FLOAT, false, 0, 0);
        let col_loc = gl.get_attrib_location(&program, "a_color") as u32;
        gl.bind_buffer(GL::ARRAY_BUFFER, Some(&colors));
        gl.enable_vertex_attrib_array(col_loc);
        gl.vertex_attrib_pointer_with_i32(col_loc, 4, GL::UNSIGNED_BYTE, true, 0, 0);
        Ok(Self {
            u_scale: gl.get_uniform_location(&program, "u_scale"),
            u_offset: gl.get_uniform_location(&program, "u_offset"),
            u_size: gl.get_uniform_location(&program, "u_size"),
            gl,
            program,
            positions,
            colors,
            n: 0,
        })
    }

    /// Uploads normalised `(x, y)` pairs.
    pub fn set_positions(&mut self, xy: &[f32]) {
        self.gl.bind_buffer(GL::ARRAY_BUFFER, Some(&self.positions));
        let arr = js_sys::Float32Array::from(xy);
        self.gl
            .buffer_data_with_array_buffer_view(GL::ARRAY_BUFFER, &arr, GL::STATIC_DRAW);
        self.n = (xy.len() / 2) as i32;
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

    /// Draws all points with `cam` on a `w × h` pixel canvas.
    pub fn draw(&self, cam: Camera, size: f32, w: f64, h: f64) {
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
        gl.uniform1f(
            self.u_size.as_ref(),
            size * web_sys::window().map_or(1.0, |w| w.device_pixel_ratio()) as f32,
        );
        gl.draw_arrays(GL::POINTS, 0, self.n);
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

/// Canvas pixel (CSS) of normalised coordinates.
pub fn project(cam: Camera, x: f32, y: f32, w: f64, h: f64) -> (f64, f64) {
    let (sx, sy) = scale(cam, w, h);
    let cx = f64::from((x - cam.x) * sx);
    let cy = f64::from((y - cam.y) * sy);
    ((cx + 1.0) / 2.0 * w, (1.0 - cy) / 2.0 * h)
}

/// Scales coordinates (`n × dims`, first two used) into [-0.95, 0.95] around their centre.
pub fn normalise(coords: &[f32], dims: usize) -> Vec<f32> {
    let n = coords.len() / dims.max(1);
    let (mut lo, mut hi) = ([f32::INFINITY; 2], [f32::NEG_INFINITY; 2]);
    for i in 0..n {
        for d in 0..2 {
            let v = coords[i * dims + d];
            lo[d] = lo[d].min(v);
            hi[d] = hi[d].max(v);
        }
    }
    let half = ((hi[0] - lo[0]).max(hi[1] - lo[1]) / 2.0).max(1e-9);
    let mid = [(lo[0] + hi[0]) / 2.0, (lo[1] + hi[1]) / 2.0];
    (0..n)
        .flat_map(|i| (0..2).map(move |d| (coords[i * dims + d] - mid[d]) / half * 0.95))
        .collect()
}

/// The visible point nearest to `(x, y)` within `radius` (normalised units).
pub fn nearest(xy: &[f32], rgba: &[u8], x: f32, y: f32, radius: f32) -> Option<usize> {
    let mut best = (radius * radius, None);
    for i in 0..xy.len() / 2 {
        if rgba.get(4 * i + 3) == Some(&0) {
            continue;
        }
        let d = (xy[2 * i] - x).powi(2) + (xy[2 * i + 1] - y).powi(2);
        if d <= best.0 {
            best = (d, Some(i));
        }
    }
    best.1
}

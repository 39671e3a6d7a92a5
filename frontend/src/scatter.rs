//! The WebGL2 scatter: one draw call of `n` point sprites (positions and colours in GPU buffers),
//! a camera uniform for pan and zoom, round markers with soft edges. Picking is done on the CPU
//! against the same normalised positions.

use failscope_shared::view::Camera;
use wasm_bindgen::JsCast;
use web_sys::{HtmlCanvasElement, WebGl2RenderingContext as GL, WebGlBuffer, WebGlProgram, WebGlUniformLocation};

const VERTEX: &str = r#"#version 300 es
in vec3 a_pos;
in vec4 a_color;
in float a_shape;
uniform mat3 u_rot;
uniform vec2 u_scale;
uniform vec2 u_offset;
uniform float u_size;
out vec4 v_color;
flat out int v_shape;
void main() {
    vec3 p = u_rot * a_pos;
    gl_Position = vec4((p.xy - u_offset) * u_scale, 0.0, 1.0);
    gl_PointSize = u_size;
    v_color = a_color;
    v_shape = int(a_shape + 0.5);
}"#;

/// Marker shapes by index (see [`SHAPES`]); only the circle has a soft edge.
const FRAGMENT: &str = r#"#version 300 es
precision mediump float;
in vec4 v_color;
flat in int v_shape;
out vec4 color;
bool plus(vec2 q) {
    return (q.x <= 0.15 && q.y <= 0.46) || (q.y <= 0.15 && q.x <= 0.46);
}
void main() {
    vec2 d = gl_PointCoord - vec2(0.5);
    vec2 a = abs(d);
    float r = dot(d, d);
    float up = -d.y;
    bool inside;
    float alpha = 1.0;
    if (v_shape == 1) inside = max(a.x, a.y) <= 0.4;
    else if (v_shape == 2) inside = up >= -0.4 && a.x <= (0.46 - up) * 0.55;
    else if (v_shape == 3) inside = a.x + a.y <= 0.48;
    else if (v_shape == 4) inside = plus(a);
    else if (v_shape == 5) inside = -up >= -0.4 && a.x <= (0.46 + up) * 0.55;
    else if (v_shape == 6) inside = r <= 0.25 && r >= 0.1;
    else if (v_shape == 7) inside = plus(abs(vec2(d.x + d.y, d.x - d.y)) * 0.7071);
    else { inside = r <= 0.25; alpha = smoothstep(0.25, 0.17, r); }
    if (!inside || v_color.a == 0.0) discard;
    color = vec4(v_color.rgb, v_color.a * alpha);
}"#;

/// The marker shapes, in the fragment shader's order, as legend glyphs.
pub const SHAPES: [&str; 8] = ["●", "■", "▲", "◆", "✚", "▼", "○", "✖"];

/// Draws the last full frame (a texture) as a quad moved and scaled to the current camera.
const BLIT_VERTEX: &str = r#"#version 300 es
in vec2 a_corner;
uniform vec2 u_scale;
uniform vec2 u_offset;
out vec2 v_uv;
void main() {
    gl_Position = vec4(a_corner * u_scale + u_offset, 0.0, 1.0);
    v_uv = a_corner * 0.5 + 0.5;
}"#;

const BLIT_FRAGMENT: &str = r#"#version 300 es
precision mediump float;
uniform sampler2D u_frame;
in vec2 v_uv;
out vec4 color;
void main() {
    color = texture(u_frame, v_uv);
}"#;

/// How much of the scatter a frame draws.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Detail {
    /// Every point (and the frame is kept for [`Detail::Moving`]).
    Full,
    /// While the view moves: the last full frame, moved and scaled with the camera, over
    /// [`EDGE_SAMPLE`] points that fill the edges it no longer covers; while orbiting in 3-D,
    /// where a flat frame cannot follow, [`ORBIT_SAMPLE`] points.
    Moving,
}

/// Points of the unbiased sample drawn around the moved kept frame. SwiftShader (software WebGL)
/// spends ~0.7 µs per point sprite, and a frame has 16 ms.
pub const EDGE_SAMPLE: i32 = 5_000;

/// Points of the unbiased sample drawn while orbiting.
pub const ORBIT_SAMPLE: i32 = 15_000;

/// The last full frame, rendered into a texture: what panning and zooming move around.
struct Kept {
    framebuffer: web_sys::WebGlFramebuffer,
    texture: web_sys::WebGlTexture,
    /// Drawing-buffer size and camera it was rendered with; `None` before the first full frame.
    drawn: Option<(i32, i32, Camera)>,
}

/// A scatter bound to one canvas.
pub struct Scatter {
    gl: GL,
    program: WebGlProgram,
    positions: WebGlBuffer,
    colors: WebGlBuffer,
    shapes: WebGlBuffer,
    /// A fixed random permutation of the points; the GPU buffers hold the points in this order, so
    /// drawing the first `k` draws an unbiased sample (level of detail while dragging) from
    /// contiguous memory (SwiftShader fetches scattered indices about twice as slowly).
    order: Vec<u32>,
    vao: web_sys::WebGlVertexArrayObject,
    u_scale: Option<WebGlUniformLocation>,
    u_offset: Option<WebGlUniformLocation>,
    u_size: Option<WebGlUniformLocation>,
    u_rot: Option<WebGlUniformLocation>,
    n: i32,
    blit: WebGlProgram,
    quad: web_sys::WebGlVertexArrayObject,
    b_scale: Option<WebGlUniformLocation>,
    b_offset: Option<WebGlUniformLocation>,
    kept: Kept,
    /// The background colour (the page's theme).
    background: [f32; 3],
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

fn link(gl: &GL, vertex: &str, fragment: &str) -> Result<WebGlProgram, String> {
    let program = gl.create_program().ok_or("cannot create a program")?;
    gl.attach_shader(&program, &shader(gl, GL::VERTEX_SHADER, vertex)?);
    gl.attach_shader(&program, &shader(gl, GL::FRAGMENT_SHADER, fragment)?);
    gl.link_program(&program);
    if gl.get_program_parameter(&program, GL::LINK_STATUS).as_bool() != Some(true) {
        return Err(gl.get_program_info_log(&program).unwrap_or_default());
    }
    Ok(program)
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
        let program = link(&gl, VERTEX, FRAGMENT)?;
        let blit = link(&gl, BLIT_VERTEX, BLIT_FRAGMENT)?;
        let positions = gl.create_buffer().ok_or("cannot create a buffer")?;
        let colors = gl.create_buffer().ok_or("cannot create a buffer")?;
        let shapes = gl.create_buffer().ok_or("cannot create a buffer")?;
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
        let shape_loc = gl.get_attrib_location(&program, "a_shape") as u32;
        gl.bind_buffer(GL::ARRAY_BUFFER, Some(&shapes));
        gl.enable_vertex_attrib_array(shape_loc);
        gl.vertex_attrib_pointer_with_i32(shape_loc, 1, GL::UNSIGNED_BYTE, false, 0, 0);
        // The blit's quad: two triangles over [-1, 1]².
        let quad = gl.create_vertex_array().ok_or("cannot create a vertex array")?;
        gl.bind_vertex_array(Some(&quad));
        let corners = gl.create_buffer().ok_or("cannot create a buffer")?;
        gl.bind_buffer(GL::ARRAY_BUFFER, Some(&corners));
        let arr = js_sys::Float32Array::from(&[-1.0f32, -1.0, 1.0, -1.0, -1.0, 1.0, 1.0, 1.0][..]);
        gl.buffer_data_with_array_buffer_view(GL::ARRAY_BUFFER, &arr, GL::STATIC_DRAW);
        let corner_loc = gl.get_attrib_location(&blit, "a_corner") as u32;
        gl.enable_vertex_attrib_array(corner_loc);
        gl.vertex_attrib_pointer_with_i32(corner_loc, 2, GL::FLOAT, false, 0, 0);
        gl.bind_vertex_array(None);
        let kept = Kept {
            framebuffer: gl.create_framebuffer().ok_or("cannot create a framebuffer")?,
            texture: gl.create_texture().ok_or("cannot create a texture")?,
            drawn: None,
        };
        Ok(Self {
            b_scale: gl.get_uniform_location(&blit, "u_scale"),
            b_offset: gl.get_uniform_location(&blit, "u_offset"),
            blit,
            quad,
            kept,
            u_scale: gl.get_uniform_location(&program, "u_scale"),
            u_offset: gl.get_uniform_location(&program, "u_offset"),
            u_size: gl.get_uniform_location(&program, "u_size"),
            u_rot: gl.get_uniform_location(&program, "u_rot"),
            gl,
            program,
            positions,
            colors,
            shapes,
            order: Vec::new(),
            vao,
            n: 0,
            background: [1.0, 1.0, 1.0],
        })
    }

    /// Sets the background colour; the kept frame is drawn again.
    pub fn set_background(&mut self, rgb: [f32; 3]) {
        if self.background != rgb {
            self.background = rgb;
            self.kept.drawn = None;
        }
    }

    /// Uploads normalised `(x, y, z)` triples (`z = 0` in 2-D), in the fixed random order of
    /// [`Scatter::order`].
    pub fn set_positions(&mut self, xyz: &[f32]) {
        let n = xyz.len() / 3;
        if self.order.len() != n {
            self.order = shuffled(n);
        }
        let permuted = permute(&self.order, xyz, 3);
        self.gl.bind_buffer(GL::ARRAY_BUFFER, Some(&self.positions));
        let arr = js_sys::Float32Array::from(&permuted[..]);
        self.gl
            .buffer_data_with_array_buffer_view(GL::ARRAY_BUFFER, &arr, GL::STATIC_DRAW);
        self.n = n as i32;
        self.kept.drawn = None;
    }

    /// Uploads RGBA and a shape index ([`SHAPES`]) per point, in the points' own order (permuted
    /// here like the positions).
    pub fn set_colors(&mut self, rgba: &[u8], shapes: &[u8]) {
        for (buffer, values, width) in [(&self.colors, rgba, 4), (&self.shapes, shapes, 1)] {
            let permuted = permute(&self.order, values, width);
            self.gl.bind_buffer(GL::ARRAY_BUFFER, Some(buffer));
            let arr = js_sys::Uint8Array::from(&permuted[..]);
            self.gl
                .buffer_data_with_array_buffer_view(GL::ARRAY_BUFFER, &arr, GL::DYNAMIC_DRAW);
        }
        self.kept.drawn = None;
    }

    /// Number of points uploaded.
    pub fn points(&self) -> usize {
        self.n as usize
    }

    /// Draws the scatter with `cam` on a `w × h` pixel canvas, in full or, while the view moves,
    /// as the kept frame over a sample (see [`Detail`]).
    pub fn draw(&mut self, cam: Camera, size: f32, w: f64, h: f64, detail: Detail) {
        let (wi, hi) = (w as i32, h as i32);
        match detail {
            Detail::Full => {
                // Render into the kept texture, then copy it to the canvas.
                self.keep(wi, hi);
                self.gl.bind_framebuffer(GL::FRAMEBUFFER, Some(&self.kept.framebuffer));
                self.draw_points(cam, size, wi, hi, self.n);
                self.gl.bind_framebuffer(GL::FRAMEBUFFER, None);
                self.kept.drawn = Some((wi, hi, cam));
                self.blit(wi, hi, (1.0, 1.0), (0.0, 0.0));
            }
            Detail::Moving => {
                // A flat frame can follow pan and zoom, not a rotation.
                let follow = self
                    .kept
                    .drawn
                    .filter(|&(kw, kh, c0)| (kw, kh) == (wi, hi) && (c0.yaw, c0.pitch) == (cam.yaw, cam.pitch));
                let sample = if follow.is_some() { EDGE_SAMPLE } else { ORBIT_SAMPLE };
                self.draw_points(cam, size, wi, hi, self.n.min(sample));
                if let Some((_, _, c0)) = follow {
                    let (s0, s1) = (c0.scale(w, h), cam.scale(w, h));
                    let k = (s1.0 / s0.0, s1.1 / s0.1);
                    let o = ((c0.x - cam.x) * s1.0, (c0.y - cam.y) * s1.1);
                    self.blit(wi, hi, k, o);
                }
            }
        }
    }

    /// (Re)allocates the kept frame's texture for a `w × h` drawing buffer.
    fn keep(&mut self, w: i32, h: i32) {
        if matches!(self.kept.drawn, Some((kw, kh, _)) if (kw, kh) == (w, h)) {
            return;
        }
        let gl = &self.gl;
        gl.bind_texture(GL::TEXTURE_2D, Some(&self.kept.texture));
        let _ = gl.tex_image_2d_with_i32_and_i32_and_i32_and_format_and_type_and_opt_u8_array(
            GL::TEXTURE_2D,
            0,
            GL::RGBA8 as i32,
            w,
            h,
            0,
            GL::RGBA,
            GL::UNSIGNED_BYTE,
            None,
        );
        for (k, v) in [
            (GL::TEXTURE_MIN_FILTER, GL::NEAREST),
            (GL::TEXTURE_MAG_FILTER, GL::NEAREST),
            (GL::TEXTURE_WRAP_S, GL::CLAMP_TO_EDGE),
            (GL::TEXTURE_WRAP_T, GL::CLAMP_TO_EDGE),
        ] {
            gl.tex_parameteri(GL::TEXTURE_2D, k, v as i32);
        }
        gl.bind_framebuffer(GL::FRAMEBUFFER, Some(&self.kept.framebuffer));
        gl.framebuffer_texture_2d(
            GL::FRAMEBUFFER,
            GL::COLOR_ATTACHMENT0,
            GL::TEXTURE_2D,
            Some(&self.kept.texture),
            0,
        );
        gl.bind_framebuffer(GL::FRAMEBUFFER, None);
        self.kept.drawn = None;
    }

    /// Clears the bound target and draws the first `count` points.
    fn draw_points(&self, cam: Camera, size: f32, w: i32, h: i32, count: i32) {
        let gl = &self.gl;
        gl.viewport(0, 0, w, h);
        let [r, g, b] = self.background;
        gl.clear_color(r, g, b, 1.0);
        gl.clear(GL::COLOR_BUFFER_BIT);
        gl.enable(GL::BLEND);
        gl.blend_func(GL::SRC_ALPHA, GL::ONE_MINUS_SRC_ALPHA);
        gl.use_program(Some(&self.program));
        let (sx, sy) = cam.scale(f64::from(w), f64::from(h));
        gl.uniform2f(self.u_scale.as_ref(), sx, sy);
        gl.uniform2f(self.u_offset.as_ref(), cam.x, cam.y);
        // Row-major rotation: WebGL2 accepts the transpose flag.
        gl.uniform_matrix3fv_with_f32_array(self.u_rot.as_ref(), true, &cam.rotation());
        gl.uniform1f(
            self.u_size.as_ref(),
            size * web_sys::window().map_or(1.0, |w| w.device_pixel_ratio()) as f32,
        );
        gl.bind_vertex_array(Some(&self.vao));
        gl.draw_arrays(GL::POINTS, 0, count);
    }

    /// Draws the kept frame, opaque, scaled by `k` and moved by `o` in clip space.
    fn blit(&self, w: i32, h: i32, k: (f32, f32), o: (f32, f32)) {
        let gl = &self.gl;
        gl.viewport(0, 0, w, h);
        gl.disable(GL::BLEND);
        gl.use_program(Some(&self.blit));
        gl.uniform2f(self.b_scale.as_ref(), k.0, k.1);
        gl.uniform2f(self.b_offset.as_ref(), o.0, o.1);
        gl.active_texture(GL::TEXTURE0);
        gl.bind_texture(GL::TEXTURE_2D, Some(&self.kept.texture));
        gl.bind_vertex_array(Some(&self.quad));
        gl.draw_arrays(GL::TRIANGLE_STRIP, 0, 4);
    }
}

/// Per-point records of `width` values each (`values`), in the order `order`.
fn permute<T: Copy>(order: &[u32], values: &[T], width: usize) -> Vec<T> {
    order
        .iter()
        .flat_map(|&i| values[width * i as usize..width * (i as usize + 1)].iter().copied())
        .collect()
}

/// `0..n` in a fixed pseudo-random order (Fisher–Yates with a fixed xorshift seed: the same sample
/// every frame and every load).
fn shuffled(n: usize) -> Vec<u32> {
    let mut idx: Vec<u32> = (0..n as u32).collect();
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    for i in (1..n).rev() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        idx.swap(i, (state % (i as u64 + 1)) as usize);
    }
    idx
}

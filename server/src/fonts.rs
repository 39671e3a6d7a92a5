//! The bundled DejaVu Sans (`assets/fonts`), registered as plotters' `sans-serif`, so that every
//! figure (the API's, the benchmark report's) measures and draws its text the same on every
//! machine, with or without system fonts.

use std::sync::Once;

use plotters::style::FontStyle;

static FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

/// Registers the font (once per process).
pub fn register() {
    static REGISTER: Once = Once::new();
    REGISTER.call_once(|| {
        // The font is compiled in and parsed by a test, so this cannot fail at run time.
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
    });
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_bundled_font_parses() {
        assert!(plotters::style::register_font("check", plotters::style::FontStyle::Normal, super::FONT).is_ok());
    }
}

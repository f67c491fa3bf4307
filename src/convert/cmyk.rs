//! CMYK and YCCK JPEGs to RGB, in Rust: Debian's ffmpeg 5.1 decodes some of them (ImageMagick's)
//! but not others ("not yet implemented" for the sampling other encoders use), while
//! `jpeg-decoder` reads them all and leaves the colour conversion to us. The result is written
//! as a binary PPM, which ffmpeg then encodes like any picture.
//!
//! `jpeg-decoder` undoes Adobe's inversion (the APP14 segment every 4-component JPEG of design
//! tools carries) and hands back ink amounts, 0 = none, so the naive conversion applies:
//! `R = (255 − C)·(255 − K) / 255`, likewise for G and B (no colour profile is applied).

use std::io::Write;
use std::path::Path;

/// Decode the JPEG at `input`; when it is CMYK (or YCCK), write its RGB as a PPM at `output`
/// and return true. Pictures over `max_pixels` are refused, before decoding.
pub fn to_ppm(input: &Path, output: &Path, max_pixels: u64) -> Result<bool, String> {
    let file = std::fs::File::open(input).map_err(|e| e.to_string())?;
    let mut decoder = jpeg_decoder::Decoder::new(std::io::BufReader::new(file));
    decoder.read_info().map_err(|e| e.to_string())?;
    let info = decoder.info().ok_or("no frame header")?;
    if info.pixel_format != jpeg_decoder::PixelFormat::CMYK32 {
        return Ok(false);
    }
    let pixels = u64::from(info.width) * u64::from(info.height);
    if pixels > max_pixels {
        return Err(format!(
            "{}×{} is more than {max_pixels} pixels",
            info.width, info.height
        ));
    }
    decoder.set_max_decoding_buffer_size(usize::try_from(pixels * 4).unwrap_or(usize::MAX));
    let cmyk = decoder.decode().map_err(|e| e.to_string())?;
    let rgb = rgb_from_cmyk(&cmyk);
    let mut out =
        std::io::BufWriter::new(std::fs::File::create(output).map_err(|e| e.to_string())?);
    write!(out, "P6\n{} {}\n255\n", info.width, info.height).map_err(|e| e.to_string())?;
    out.write_all(&rgb).map_err(|e| e.to_string())?;
    out.flush().map_err(|e| e.to_string())?;
    Ok(true)
}

/// RGB from CMYK ink amounts (0 = no ink), four bytes a pixel.
fn rgb_from_cmyk(cmyk: &[u8]) -> Vec<u8> {
    cmyk.chunks_exact(4)
        .flat_map(|p| {
            let paper = 255 - u16::from(p[3]);
            [0, 1, 2].map(|i| (((255 - u16::from(p[i])) * paper + 127) / 255) as u8)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cmyk_jpeg_becomes_the_colours_it_shows() {
        // 16×16 of pure red ink-wise (no cyan, full magenta and yellow, no black), as
        // `jpeg-encoder` takes CMYK (0 = no ink).
        let ink: Vec<u8> = (0..256).flat_map(|_| [0u8, 255, 255, 0]).collect();
        let mut jpeg = Vec::new();
        jpeg_encoder::Encoder::new(&mut jpeg, 100)
            .encode(&ink, 16, 16, jpeg_encoder::ColorType::Cmyk)
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let (input, output) = (dir.path().join("in.jpg"), dir.path().join("out.ppm"));
        std::fs::write(&input, &jpeg).unwrap();
        assert!(to_ppm(&input, &output, 1000).unwrap());
        let ppm = std::fs::read(&output).unwrap();
        assert!(ppm.starts_with(b"P6\n16 16\n255\n"));
        let px = &ppm[13..16];
        assert!(px[0] > 240 && px[1] < 15 && px[2] < 15, "{px:?}");
        assert!(
            to_ppm(&input, &output, 100).is_err(),
            "over the pixel limit"
        );
        // An RGB JPEG is left to ffmpeg.
        let mut rgb = Vec::new();
        jpeg_encoder::Encoder::new(&mut rgb, 90)
            .encode(&[0u8; 16 * 16 * 3], 16, 16, jpeg_encoder::ColorType::Rgb)
            .unwrap();
        std::fs::write(&input, &rgb).unwrap();
        assert!(!to_ppm(&input, &output, 1000).unwrap());
    }
}

//! Kubernetes resource quantities: kai-text's one parser, and bytes written back as a
//! quantity.

pub use kai_text::quantity::parse_quantity;

/// Bytes as a quantity string in Mi (or Gi when whole), rounded up.
pub fn format_bytes(bytes: f64) -> String {
    let mi = (bytes / (1024.0 * 1024.0)).ceil() as u64;
    if mi >= 1024 && mi.is_multiple_of(1024) {
        format!("{}Gi", mi / 1024)
    } else {
        format!("{mi}Mi")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_bytes() {
        assert_eq!(format_bytes(256.0 * 1024.0 * 1024.0), "256Mi");
        assert_eq!(format_bytes(2.0 * 1024.0 * 1024.0 * 1024.0), "2Gi");
    }
}

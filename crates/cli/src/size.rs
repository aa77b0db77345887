//! Sizes in bytes as command lines take them: `16777216`, `16MiB`, `64k`.

/// A `--max-message-size`: bytes, or `None` for no limit.
#[derive(Clone, Copy, Debug)]
pub(crate) struct MessageSize(pub(crate) Option<u64>);

/// Parses a `--max-message-size` (see [`parse_size`]).
pub(crate) fn message_size(text: &str) -> Result<MessageSize, String> {
    parse_size(text).map(MessageSize)
}

/// Parses a size in bytes, with an optional binary suffix (`k`/`KiB`,
/// `M`/`MiB`, `G`/`GiB`, case-insensitive); `0` means no limit (`None`).
pub(crate) fn parse_size(text: &str) -> Result<Option<u64>, String> {
    let trimmed = text.trim();
    let digits = trimmed
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(trimmed.len());
    let (number, suffix) = trimmed.split_at(digits);
    let not_a_size =
        || format!("`{text}` is not a size: expected bytes, or a number with k, M or G (e.g. 16M)");
    let shift = match suffix.to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kib" => 10,
        "m" | "mib" => 20,
        "g" | "gib" => 30,
        _ => return Err(not_a_size()),
    };
    let n: u64 = number.parse().map_err(|_| not_a_size())?;
    let bytes = n
        .checked_mul(1 << shift)
        .filter(|b| i64::try_from(*b).is_ok())
        .ok_or_else(|| format!("`{text}` is too large a size"))?;
    Ok((bytes > 0).then_some(bytes))
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1024"), Ok(Some(1024)));
        assert_eq!(parse_size("16M"), Ok(Some(16 << 20)));
        assert_eq!(parse_size("16MiB"), Ok(Some(16 << 20)));
        assert_eq!(parse_size("64k"), Ok(Some(64 << 10)));
        assert_eq!(parse_size("1g"), Ok(Some(1 << 30)));
        assert_eq!(parse_size("0"), Ok(None));
        for bad in ["", "M", "-1", "1.5M", "16 MB", "1T", "99999999999G"] {
            assert!(parse_size(bad).is_err(), "{bad:?}");
        }
    }
}

//! Key normalisation and splitting into components (spec §6.4).

/// The stored form of a key: one leading `/` is dropped, nothing else changes.
///
/// A trailing `/` stays, and so does `//` inside the key.
pub fn normalize(key: &str) -> &str {
    key.strip_prefix('/').unwrap_or(key)
}

/// The components of a (normalised) key, as JS hypertrie splits it: split on `/`, then drop the
/// first piece if it is empty and then the last piece if it is empty. Empty pieces in the middle
/// are kept: `"a/"` gives `["a"]`, `"a//b"` gives `["a", "", "b"]`, `""` gives nothing.
pub fn split(key: &str) -> impl Iterator<Item = &str> + Clone {
    let rest = key.strip_prefix('/').unwrap_or(key);
    // After the first piece is gone, the last piece is empty exactly when the rest is empty or
    // ends with '/'.
    let rest = if rest.is_empty() { None } else { Some(rest.strip_suffix('/').unwrap_or(rest)) };
    rest.into_iter().flat_map(|r| r.split('/'))
}

/// The `j`-th component of a key, if it has that many.
pub(crate) fn component(key: &str, j: usize) -> Option<&str> {
    split(key).nth(j)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(key: &str) -> Vec<&str> {
        split(normalize(key)).collect()
    }

    #[test]
    fn splits_like_js() {
        assert_eq!(parts(""), Vec::<&str>::new());
        assert_eq!(parts("/"), Vec::<&str>::new());
        assert_eq!(parts("a"), ["a"]);
        assert_eq!(parts("a/"), ["a"]);
        assert_eq!(parts("/a/"), ["a"]);
        assert_eq!(parts("a//b"), ["a", "", "b"]);
        assert_eq!(parts("a//"), ["a", ""]);
        // "//x" normalises to "/x", whose split drops the empty first piece.
        assert_eq!(parts("//x"), ["x"]);
        assert_eq!(parts("///"), [""]);
        assert_eq!(parts("@types/node/18.0.0"), ["@types", "node", "18.0.0"]);
    }

    #[test]
    fn normalizes_one_leading_slash() {
        assert_eq!(normalize("/leading"), "leading");
        assert_eq!(normalize("//x"), "/x");
        assert_eq!(normalize("trailing/"), "trailing/");
        assert_eq!(component("a//b", 1), Some(""));
        assert_eq!(component("a", 1), None);
    }
}

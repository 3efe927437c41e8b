//! `Accept` → which packument form (spec §1.2) and `Accept-Encoding` → gzip or not.
//!
//! npm asks for the full form (`application/json`), pnpm and Yarn 1 for the abbreviated one
//! with the full form as a fallback (`application/vnd.npm.install-v1+json; q=1.0,
//! application/json; q=0.8, */*`), Yarn Berry sends nothing (full), bun the abbreviated one.
//! The abbreviated form is answered when the client ranks it at least as high as JSON.

use indexer::model::ABBREVIATED_CONTENT_TYPE;

/// The two packument representations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Form {
    /// `application/json`: everything the index keeps, `time` included.
    Full,
    /// `application/vnd.npm.install-v1+json`: the fields installers read (spec §1.3).
    Abbreviated,
}

impl Form {
    /// The exact `Content-Type` (pnpm checks the abbreviated one).
    pub(crate) fn content_type(self) -> &'static str {
        match self {
            Form::Full => "application/json",
            Form::Abbreviated => ABBREVIATED_CONTENT_TYPE,
        }
    }
}

/// The form an `Accept` header asks for.
pub(crate) fn form(accept: Option<&str>) -> Form {
    let Some(accept) = accept else { return Form::Full };
    let (mut corgi, mut json) = (None::<f32>, None::<f32>);
    for item in accept.split(',') {
        let mut parts = item.split(';');
        let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let q = parts
            .filter_map(|p| p.trim().strip_prefix("q=").and_then(|q| q.trim().parse::<f32>().ok()))
            .next()
            .unwrap_or(1.0);
        match media.as_str() {
            m if m == ABBREVIATED_CONTENT_TYPE => corgi = Some(corgi.unwrap_or(0.0).max(q)),
            "application/json" => json = Some(json.unwrap_or(0.0).max(q)),
            _ => {}
        }
    }
    match (corgi, json) {
        (Some(c), j) if c > 0.0 && c >= j.unwrap_or(0.0) => Form::Abbreviated,
        _ => Form::Full,
    }
}

/// Whether `Accept-Encoding` allows gzip (`q=0` refuses it).
pub(crate) fn gzip(accept_encoding: Option<&str>) -> bool {
    accept_encoding.is_some_and(|a| {
        a.split(',').any(|item| {
            let mut parts = item.split(';');
            let coding = parts.next().unwrap_or("").trim();
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q=").and_then(|q| q.trim().parse::<f32>().ok()))
                .next()
                .unwrap_or(1.0);
            (coding.eq_ignore_ascii_case("gzip") || coding == "*") && q > 0.0
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_client_gets_the_form_it_asks_for() {
        let pnpm = "application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*";
        assert_eq!(form(Some(pnpm)), Form::Abbreviated);
        assert_eq!(form(Some("application/vnd.npm.install-v1+json")), Form::Abbreviated);
        assert_eq!(form(Some("application/json")), Form::Full);
        assert_eq!(form(Some("application/json; q=1.0, */*")), Form::Full);
        assert_eq!(form(Some("*/*")), Form::Full);
        assert_eq!(form(None), Form::Full);
        assert_eq!(form(Some("application/vnd.npm.install-v1+json; q=0.5, application/json")), Form::Full);
        assert_eq!(form(Some("application/vnd.npm.install-v1+json;q=0")), Form::Full);
        assert_eq!(form(Some("garbage;;;q=x,,")), Form::Full);
    }

    #[test]
    fn gzip_unless_refused() {
        assert!(gzip(Some("gzip, deflate, br")));
        assert!(gzip(Some("*")));
        assert!(!gzip(Some("gzip;q=0")));
        assert!(!gzip(Some("identity")));
        assert!(!gzip(None));
    }
}

//! List parameters shared by end users, responses and declines: `page`
//! (default 1, max 30), `per_page` (default 25, max 50), `created[op]` /
//! `updated[op]` filters in unix seconds and `sort_order`.

use crate::params::Params;

/// Largest page number InMoment serves.
const MAX_PAGE: usize = 30;
/// Largest page size InMoment serves.
const MAX_PER_PAGE: usize = 50;

/// Whether `secs` passes every `name[op]` filter (`eq`, `lt`, `lte`, `gt`,
/// `gte`; `lt`/`gt` are strict). Unparsable values are ignored.
pub fn time_filter_ok(params: &Params, name: &str, secs: i64) -> bool {
    params.children(&[name]).iter().all(|(op, value)| {
        let Ok(limit) = value.trim().parse::<i64>() else {
            return true;
        };
        match op.as_str() {
            "eq" => secs == limit,
            "lt" => secs < limit,
            "lte" => secs <= limit,
            "gt" => secs > limit,
            "gte" => secs >= limit,
            _ => true,
        }
    })
}

/// Whether the list is sorted descending (`sort_order=desc|asc`).
pub fn descending(params: &Params, default_desc: bool) -> bool {
    match params.get("sort_order") {
        Some(o) if o.eq_ignore_ascii_case("desc") => true,
        Some(o) if o.eq_ignore_ascii_case("asc") => false,
        _ => default_desc,
    }
}

/// The requested page of already sorted items, with clamped paging.
pub fn paginate<T>(items: Vec<T>, params: &Params) -> Vec<T> {
    let number = |key: &str, default: usize, max: usize| {
        params
            .get(key)
            .and_then(|v| v.trim().parse::<usize>().ok())
            .unwrap_or(default)
            .clamp(1, max)
    };
    let page = number("page", 1, MAX_PAGE);
    let per_page = number("per_page", 25, MAX_PER_PAGE);
    items
        .into_iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_are_strict_for_lt_and_gt() {
        let p = Params::from_urlencoded(b"created[gt]=10&created[lte]=20");
        assert!(!time_filter_ok(&p, "created", 10));
        assert!(time_filter_ok(&p, "created", 11));
        assert!(time_filter_ok(&p, "created", 20));
        assert!(!time_filter_ok(&p, "created", 21));
        assert!(time_filter_ok(&p, "updated", 0));
    }

    #[test]
    fn paging_is_clamped() {
        let items: Vec<u32> = (0..200).collect();
        let p = Params::from_urlencoded(b"per_page=100&page=2");
        assert_eq!(paginate(items.clone(), &p), (50..100).collect::<Vec<_>>());
        let p = Params::from_urlencoded(b"page=0");
        assert_eq!(paginate(items, &p).len(), 25);
    }
}

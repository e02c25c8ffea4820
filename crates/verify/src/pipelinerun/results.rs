//! How Tekton makes a PipelineRun's results from its tasks' results, as v1.15's
//! `ApplyTaskResultsToPipelineResults` does (pkg/reconciler/pipelinerun/resources), redone
//! here over verified values so that the value the status reports can be checked.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use regex::Regex;

use crate::taskrun::ResultValue;

/// Tekton's `variableSubstitutionFormat` and `exactVariableSubstitutionFormat`
/// (pkg/apis/pipeline/v1/resultref.go). RE2 and the regex crate agree on these.
static VARIABLE: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(r"\$\([_a-zA-Z0-9.-]+(\.[_a-zA-Z0-9.-]+)*(\[([0-9]+|\*)\])?\)").ok()
});
static EXACT_VARIABLE: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(r"^\$\([_a-zA-Z0-9.-]+(\.[_a-zA-Z0-9.-]+)*(\[([0-9]+|\*)\])?\)$").ok()
});

/// What a task's result is, as far as verification can tell.
pub(super) enum Lookup {
    /// The verified value (for a matrixed task, the gathered array).
    Found(ResultValue),
    /// The task ran as something that cannot be verified here (a CustomRun, a child
    /// PipelineRun): its results exist, unverified.
    Unverifiable,
    /// The task has no verified TaskRun, or its TaskRun(s) no such result.
    Absent,
}

/// A reference a result was made from.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Reference {
    /// The pipeline task.
    pub(super) task: String,
    /// Its result.
    pub(super) result: String,
}

/// How one declared result came out.
pub(super) enum Made {
    /// The value Tekton computes, and the task results it was made of.
    Value(ResultValue, Vec<Reference>),
    /// Made of something verification cannot vouch for; the reason.
    Unverifiable(String),
    /// Tekton would not have made it at all (a reference to a result that does not
    /// exist); the reason.
    Unmade(String),
}

/// Makes a declared result's value from `lookup`, as Tekton does.
pub(super) fn make(value: &ResultValue, lookup: impl Fn(&str, &str) -> Lookup) -> Made {
    let variables = variables(value);
    if variables.is_empty() {
        return Made::Unverifiable(
            "its value refers to no task result (Tekton v1.15 does not report such a result)"
                .into(),
        );
    }
    let mut strings = BTreeMap::new();
    let mut arrays = BTreeMap::new();
    let mut objects = BTreeMap::new();
    let mut references = Vec::new();
    let mut unverifiable = None;
    for variable in &variables {
        let parts: Vec<&str> = variable.split('.').collect();
        if parts.len() < 3 || !matches!(parts[0], "tasks" | "finally") || parts[2] != "results" {
            unverifiable.get_or_insert_with(|| format!("$({variable}) is not a task result"));
            continue;
        }
        let task = parts[1];
        match parts.len() {
            // tasks.<t>.results.<r>, <r>[i] or <r>[*]
            4 => {
                let (result, index) = parse_result_name(parts[3]);
                match lookup(task, &result) {
                    Lookup::Found(ResultValue::String(s)) => {
                        strings.insert(variable.clone(), s);
                    }
                    Lookup::Found(ResultValue::Array(items)) => {
                        if index == "*" {
                            arrays.insert(strip_star(variable), items);
                        } else {
                            // Go's strconv.Atoi error leaves 0: `r` alone is item 0.
                            let i = index.parse::<usize>().unwrap_or(0);
                            let Some(item) = items.get(i) else {
                                return Made::Unmade(format!(
                                    "$({variable}) is beyond the array's {} item(s)",
                                    items.len()
                                ));
                            };
                            strings.insert(variable.clone(), item.clone());
                        }
                    }
                    Lookup::Found(ResultValue::Object(map)) => {
                        objects.insert(strip_star(variable), map);
                    }
                    Lookup::Unverifiable => {
                        unverifiable.get_or_insert_with(|| {
                            format!("$({variable}) comes from a run that is not a TaskRun")
                        });
                        continue;
                    }
                    Lookup::Absent => return Made::Unmade(absent(variable)),
                }
                references.push(Reference {
                    task: task.into(),
                    result,
                });
            }
            // tasks.<t>.results.<r>.<key>
            5 => {
                let (result, _) = parse_result_name(parts[3]);
                match lookup(task, &result) {
                    Lookup::Found(ResultValue::Object(map)) if map.contains_key(parts[4]) => {
                        strings.insert(variable.clone(), map[parts[4]].clone());
                    }
                    Lookup::Found(_) => {
                        return Made::Unmade(format!(
                            "$({variable}): the result has no key {:?}",
                            parts[4]
                        ));
                    }
                    // Tekton reads object keys of TaskRuns only.
                    Lookup::Unverifiable | Lookup::Absent => {
                        return Made::Unmade(absent(variable));
                    }
                }
                references.push(Reference {
                    task: task.into(),
                    result,
                });
            }
            _ => {
                unverifiable.get_or_insert_with(|| format!("$({variable}) is not a task result"));
            }
        }
    }
    if let Some(why) = unverifiable {
        return Made::Unverifiable(why);
    }
    references.sort();
    references.dedup();
    Made::Value(apply(value, &strings, &arrays, &objects), references)
}

fn absent(variable: &str) -> String {
    format!("$({variable}) names a result that no verified TaskRun of the task has")
}

/// The variables a value refers to (Tekton's `GetVarSubstitutionExpressions`): every
/// `$(...)` in the string, the array's items or the object's values, without `$(` `)`.
pub(super) fn variables(value: &ResultValue) -> Vec<String> {
    let texts: Vec<&str> = match value {
        ResultValue::String(s) => vec![s],
        ResultValue::Array(items) => items.iter().map(String::as_str).collect(),
        ResultValue::Object(map) => map.values().map(String::as_str).collect(),
    };
    let Some(re) = VARIABLE.as_ref() else {
        return Vec::new();
    };
    texts
        .into_iter()
        .flat_map(|t| re.find_iter(t))
        .map(|m| m.as_str()[2..m.as_str().len() - 1].to_owned())
        .collect()
}

/// Tekton's `ParseResultName`: `r[1]` is `("r", "1")`, `r[*]` is `("r", "*")`.
fn parse_result_name(name: &str) -> (String, String) {
    // arrayIndexing `\[([0-9])*\*?\]`: the first such bracket is the index, all removed.
    let mut index = None;
    let mut out = String::new();
    let mut rest = name;
    while let Some(open) = rest.find('[') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        let star = usize::from(after[digits..].starts_with('*'));
        if after[digits + star..].starts_with(']') {
            index.get_or_insert_with(|| after[..digits + star].to_owned());
            rest = &after[digits + star + 1..];
        } else {
            out.push('[');
            rest = after;
        }
    }
    out.push_str(rest);
    (out, index.unwrap_or_default())
}

/// Tekton's `StripStarVarSubExpression` on a variable (already without `$(` and `)`).
fn strip_star(variable: &str) -> String {
    variable.strip_suffix("[*]").unwrap_or(variable).to_owned()
}

/// Tekton's `ParamValue.ApplyReplacements` on a pipeline result's value.
fn apply(
    value: &ResultValue,
    strings: &BTreeMap<String, String>,
    arrays: &BTreeMap<String, Vec<String>>,
    objects: &BTreeMap<String, BTreeMap<String, String>>,
) -> ResultValue {
    match value {
        ResultValue::Array(items) => ResultValue::Array(
            items
                .iter()
                .flat_map(|v| apply_array(v, strings, arrays))
                .collect(),
        ),
        ResultValue::Object(map) => ResultValue::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), replace(v, strings)))
                .collect(),
        ),
        ResultValue::String(s) => {
            let exact = EXACT_VARIABLE.as_ref().is_some_and(|re| re.is_match(s));
            if !exact {
                return ResultValue::String(replace(s, strings));
            }
            // `applyOrCorrect`: a whole reference to an array or object changes the type.
            let trimmed = strip_star(&s[2..s.len() - 1]);
            let mut out = ResultValue::String(s.clone());
            if strings.contains_key(&trimmed) {
                out = ResultValue::String(replace(s, strings));
            }
            if arrays.contains_key(&trimmed) {
                out = ResultValue::Array(apply_array(s, strings, arrays));
            }
            if let Some(map) = objects.get(&trimmed) {
                out = ResultValue::Object(map.clone());
            }
            out
        }
    }
}

/// Tekton's `ApplyArrayReplacements`.
fn apply_array(
    text: &str,
    strings: &BTreeMap<String, String>,
    arrays: &BTreeMap<String, Vec<String>>,
) -> Vec<String> {
    for (k, v) in arrays {
        if text == format!("$({k})") || text == format!("$({k}[*])") {
            return v.clone();
        }
    }
    vec![replace(text, strings)]
}

/// Tekton's `substitution.ApplyReplacements`: each `$(k)` of the map replaced in one pass,
/// left to right. A key holds no `)`, so at most one key matches at a position.
fn replace(text: &str, strings: &BTreeMap<String, String>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("$(") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after
            .find(')')
            .and_then(|end| strings.get(&after[..end]).map(|v| (end, v)))
        {
            Some((end, value)) => {
                out.push_str(value);
                rest = &after[end + 1..];
            }
            None => {
                out.push_str("$(");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> ResultValue {
        ResultValue::String(v.into())
    }

    fn a(v: &[&str]) -> ResultValue {
        ResultValue::Array(v.iter().map(|x| (*x).to_owned()).collect())
    }

    fn lookup(task: &str, result: &str) -> Lookup {
        match (task, result) {
            ("build", "digest") => Lookup::Found(s("sha256:1")),
            ("build", "tags") => Lookup::Found(a(&["v1", "latest"])),
            ("build", "info") => Lookup::Found(ResultValue::Object(BTreeMap::from([
                ("url".into(), "r/i".into()),
                ("by".into(), "ci".into()),
            ]))),
            ("scan", "report") => Lookup::Found(a(&["ok-0", "ok-1"])),
            ("custom", _) => Lookup::Unverifiable,
            _ => Lookup::Absent,
        }
    }

    fn value(of: ResultValue) -> ResultValue {
        match make(&of, lookup) {
            Made::Value(v, _) => v,
            Made::Unverifiable(w) | Made::Unmade(w) => panic!("{w}"),
        }
    }

    #[test]
    fn references_are_replaced_as_tekton_replaces_them() {
        assert_eq!(value(s("$(tasks.build.results.digest)")), s("sha256:1"));
        assert_eq!(
            value(s(
                "img@$(tasks.build.results.digest) by $(finally.build.results.info.by)"
            )),
            s("img@sha256:1 by ci")
        );
        assert_eq!(
            value(s("$(tasks.build.results.tags[*])")),
            a(&["v1", "latest"])
        );
        assert_eq!(value(s("$(tasks.build.results.tags[1])")), s("latest"));
        // Go's Atoi error: an array named without an index is its first item.
        assert_eq!(value(s("$(tasks.build.results.tags)")), s("v1"));
        assert_eq!(
            value(a(&[
                "$(tasks.build.results.tags[*])",
                "x-$(tasks.build.results.digest)"
            ])),
            a(&["v1", "latest", "x-sha256:1"])
        );
        assert_eq!(
            value(s("$(tasks.build.results.info[*])")),
            lookup("build", "info").found()
        );
        assert_eq!(
            value(ResultValue::Object(BTreeMap::from([(
                "u".into(),
                "$(tasks.build.results.info.url)".into()
            )]))),
            ResultValue::Object(BTreeMap::from([("u".into(), "r/i".into())]))
        );
        assert_eq!(
            value(s("$(tasks.scan.results.report[*])")),
            a(&["ok-0", "ok-1"])
        );
        // A whole array inside a longer string is left as written, as Tekton leaves it.
        assert_eq!(
            value(s("all: $(tasks.build.results.tags[*])")),
            s("all: $(tasks.build.results.tags[*])")
        );
    }

    #[test]
    fn what_tekton_would_not_make_or_cannot_be_vouched_for_is_told_apart() {
        for v in [
            s("literal"),
            s("$(params.x)"),
            s("$(context.pipelineRun.name)"),
            s("$(tasks.custom.results.r)"),
            s("$(tasks.build.results.a.b.c)"),
        ] {
            assert!(matches!(make(&v, lookup), Made::Unverifiable(_)), "{v:?}");
        }
        for v in [
            s("$(tasks.build.results.missing)"),
            s("$(tasks.skipped.results.r)"),
            s("$(tasks.build.results.tags[2])"),
            s("$(tasks.build.results.info.nokey)"),
            s("$(tasks.build.results.digest.key)"),
            s("$(tasks.custom.results.r.key)"),
        ] {
            assert!(matches!(make(&v, lookup), Made::Unmade(_)), "{v:?}");
        }
    }

    #[test]
    fn result_names_lose_their_index() {
        let p = |n: &str| parse_result_name(n);
        assert_eq!(p("r"), ("r".into(), String::new()));
        assert_eq!(p("r[*]"), ("r".into(), "*".into()));
        assert_eq!(p("r[12]"), ("r".into(), "12".into()));
        assert_eq!(p("r[x]"), ("r[x]".into(), String::new()));
    }

    #[test]
    fn replacement_is_one_pass() {
        let map = BTreeMap::from([
            ("a".to_owned(), "$(b)".to_owned()),
            ("b".to_owned(), "B".to_owned()),
        ]);
        assert_eq!(replace("$(a)$(b)$($(b)", &map), "$(b)B$(B");
    }

    impl Lookup {
        fn found(self) -> ResultValue {
            match self {
                Lookup::Found(v) => v,
                _ => panic!("not found"),
            }
        }
    }
}

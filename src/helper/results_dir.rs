//! The step results directory: reading the results earlier steps wrote, and writing
//! signature results atomically.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use tekton_spire_verify::{ResultValue, legacy};

/// Largest result file read, in bytes. Tekton's termination message holds 4 KiB in all;
/// results through sidecar logs may be larger, but not beyond this.
pub const MAX_RESULT_BYTES: u64 = 1024 * 1024;

/// Why the results directory could not be used.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum ResultsDirError {
    /// The directory is missing or unreadable.
    #[error(
        "cannot read the results directory {path}; check the step's workingDir and that Tekton mounted /tekton/results (is this running as a Task step?)"
    )]
    Unreadable {
        /// The directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A result file could not be read.
    #[error("cannot read result file {path}")]
    ReadResult {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A result file is not UTF-8 text or has a name that is not UTF-8.
    #[error("result {path} is not UTF-8 text; Tekton results are text")]
    NotText {
        /// The file.
        path: PathBuf,
    },
    /// A result file is too large.
    #[error("result {path} is larger than {MAX_RESULT_BYTES} bytes")]
    TooLarge {
        /// The file.
        path: PathBuf,
    },
    /// A result named with `--result` was not written by any step.
    #[error("result {name:?} was named to be signed but no step wrote {path}")]
    MissingResult {
        /// The result.
        name: String,
        /// Where it was expected.
        path: PathBuf,
    },
    /// A result declared as an array or object does not parse as one.
    #[error(
        "result {name:?} is declared as {declared} but its text is not a JSON {declared} of strings; Tekton would drop it from the status"
    )]
    WrongType {
        /// The result.
        name: String,
        /// The declared type.
        declared: &'static str,
    },
    /// Signature results exist already: a second signing step, or a step forging them.
    #[error(
        "refusing to overwrite the existing signature result {path}; sign once, as the last step, and do not let other steps write it"
    )]
    AlreadySigned {
        /// The file.
        path: PathBuf,
    },
    /// Writing a signature result failed.
    #[error("cannot write the signature result {path}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// A result to sign, with the type the Task declares for it, if known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResultSpec {
    /// The result's name.
    pub name: String,
    /// `string`, `array` or `object`, as the Task declares it.
    pub declared: Option<DeclaredType>,
}

/// A result type a Task declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeclaredType {
    /// `type: string` (the default): the status keeps the text as written.
    String,
    /// `type: array`: the text must be a JSON array of strings.
    Array,
    /// `type: object`: the text must be a JSON object of strings.
    Object,
}

impl std::str::FromStr for ResultSpec {
    type Err = String;

    /// `NAME` or `NAME:TYPE`, TYPE one of `string`, `array`, `object`.
    fn from_str(s: &str) -> Result<Self, String> {
        let (name, declared) = match s.split_once(':') {
            None => (s, None),
            Some((name, "string")) => (name, Some(DeclaredType::String)),
            Some((name, "array")) => (name, Some(DeclaredType::Array)),
            Some((name, "object")) => (name, Some(DeclaredType::Object)),
            Some((_, other)) => {
                return Err(format!("type {other:?} is not string, array or object"));
            }
        };
        if name.is_empty() || name.contains('/') {
            return Err(format!("{name:?} is not a result name"));
        }
        Ok(Self {
            name: name.to_owned(),
            declared,
        })
    }
}

/// The value Tekton's status will hold for `text`.
fn typed(spec: &ResultSpec, text: String) -> Result<ResultValue, ResultsDirError> {
    let guessed = ResultValue::from_result_file(&text);
    let expected = match spec.declared {
        None => return Ok(guessed),
        // A declared string keeps its text even when the text is JSON.
        Some(DeclaredType::String) => return Ok(ResultValue::String(text)),
        Some(DeclaredType::Array) => "array",
        Some(DeclaredType::Object) => "object",
    };
    if guessed.type_name() == expected {
        Ok(guessed)
    } else {
        Err(ResultsDirError::WrongType {
            name: spec.name.clone(),
            declared: expected,
        })
    }
}

/// An open results directory.
#[derive(Debug)]
pub(super) struct ResultsDir {
    path: PathBuf,
}

impl ResultsDir {
    pub(super) fn open(path: &Path) -> Result<Self, ResultsDirError> {
        fs::read_dir(path).map_err(|source| ResultsDirError::Unreadable {
            path: path.to_owned(),
            source,
        })?;
        Ok(Self {
            path: path.to_owned(),
        })
    }

    /// Fails if any of `names`, or for Tekton's format any of its material, exists.
    pub(super) fn refuse_existing_signatures(
        &self,
        names: &[String],
    ) -> Result<(), ResultsDirError> {
        let existing = self.file_names()?;
        let clash = existing.iter().find(|n| {
            if names.is_empty() {
                legacy::is_material(n)
            } else {
                names.contains(n)
            }
        });
        match clash {
            Some(name) => Err(ResultsDirError::AlreadySigned {
                path: self.path.join(name),
            }),
            None => Ok(()),
        }
    }

    /// Reads `only` (every result file if empty), sorted by name, typed as Tekton's
    /// status will show them: by a declared type where one is given, else by the text.
    pub(super) fn read_results(
        &self,
        only: &[ResultSpec],
    ) -> Result<Vec<(String, ResultValue)>, ResultsDirError> {
        let mut specs: Vec<ResultSpec> = if only.is_empty() {
            self.file_names()?
                .into_iter()
                .map(|name| ResultSpec {
                    name,
                    declared: None,
                })
                .collect()
        } else {
            only.to_vec()
        };
        specs.sort_by(|a, b| a.name.cmp(&b.name));
        specs.dedup_by(|a, b| a.name == b.name);
        specs
            .into_iter()
            .map(|spec| {
                let text = self.read_one(&spec.name)?;
                let value = typed(&spec, text)?;
                Ok((spec.name, value))
            })
            .collect()
    }

    fn read_one(&self, name: &str) -> Result<String, ResultsDirError> {
        let path = self.path.join(name);
        let read_error = |source| ResultsDirError::ReadResult {
            path: path.clone(),
            source,
        };
        let file = File::open(&path).map_err(|source| match source.kind() {
            std::io::ErrorKind::NotFound => ResultsDirError::MissingResult {
                name: name.to_owned(),
                path: path.clone(),
            },
            _ => read_error(source),
        })?;
        let mut bytes = Vec::new();
        file.take(MAX_RESULT_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(read_error)?;
        if bytes.len() as u64 > MAX_RESULT_BYTES {
            return Err(ResultsDirError::TooLarge { path });
        }
        String::from_utf8(bytes).map_err(|_| ResultsDirError::NotText { path: path.clone() })
    }

    /// Regular files in the directory, sorted, without our own temporary files.
    fn file_names(&self) -> Result<Vec<String>, ResultsDirError> {
        let unreadable = |source| ResultsDirError::Unreadable {
            path: self.path.clone(),
            source,
        };
        let mut names = Vec::new();
        for entry in fs::read_dir(&self.path).map_err(unreadable)? {
            let entry = entry.map_err(unreadable)?;
            if !entry.file_type().map_err(unreadable)?.is_file() {
                continue;
            }
            let name = entry
                .file_name()
                .into_string()
                .map_err(|_| ResultsDirError::NotText { path: entry.path() })?;
            if !name.starts_with('.') {
                names.push(name);
            }
        }
        names.sort();
        Ok(names)
    }

    /// Writes results atomically: each to a temporary file in the same directory,
    /// flushed to disk, then all renamed over their final names and the directory flushed
    /// once, so a reader sees each result whole or not at all.
    pub(super) fn write_results(
        &self,
        results: &[(String, String)],
    ) -> Result<(), ResultsDirError> {
        let temp = |name: &str| {
            self.path
                .join(format!(".{name}.tmp-{}", std::process::id()))
        };
        let write_error = |name: &str, source| ResultsDirError::Write {
            path: self.path.join(name),
            source,
        };
        let cleanup = || {
            for (name, _) in results {
                let _ = fs::remove_file(temp(name));
            }
        };
        for (name, value) in results {
            let written = (|| {
                let mut file = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(temp(name))?;
                file.write_all(value.as_bytes())?;
                file.sync_all()
            })();
            if let Err(source) = written {
                cleanup();
                return Err(write_error(name, source));
            }
        }
        for (name, _) in results {
            if let Err(source) = fs::rename(temp(name), self.path.join(name)) {
                cleanup();
                return Err(write_error(name, source));
            }
        }
        File::open(&self.path)
            .and_then(|dir| dir.sync_all())
            .map_err(|source| write_error(".", source))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_are_read_sorted_and_typed_and_temporaries_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("b"), "[\"x\",\"y\"]").unwrap();
        fs::write(dir.path().join("a"), "\"quoted\"").unwrap();
        fs::write(dir.path().join(".a.tmp-1"), "junk").unwrap();
        fs::create_dir(dir.path().join("sub")).unwrap();
        let results = ResultsDir::open(dir.path())
            .unwrap()
            .read_results(&[])
            .unwrap();
        assert_eq!(
            results,
            vec![
                ("a".to_owned(), ResultValue::String("\"quoted\"".into())),
                (
                    "b".to_owned(),
                    ResultValue::Array(vec!["x".into(), "y".into()])
                ),
            ]
        );
    }

    #[test]
    fn a_named_result_that_no_step_wrote_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = ResultsDir::open(dir.path())
            .unwrap()
            .read_results(&["x".parse().unwrap()])
            .unwrap_err();
        assert!(
            matches!(err, ResultsDirError::MissingResult { .. }),
            "{err}"
        );
    }

    #[test]
    fn existing_signature_results_are_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("IMAGE.sig"), "forged").unwrap();
        let rd = ResultsDir::open(dir.path()).unwrap();
        assert!(matches!(
            rd.refuse_existing_signatures(&[]),
            Err(ResultsDirError::AlreadySigned { .. })
        ));
        assert!(rd.refuse_existing_signatures(&["SEAL".into()]).is_ok());
    }

    #[test]
    fn a_written_result_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let rd = ResultsDir::open(dir.path()).unwrap();
        rd.write_results(&[("SEAL".into(), "value".into())])
            .unwrap();
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec!["SEAL"]);
        assert_eq!(
            fs::read_to_string(dir.path().join("SEAL")).unwrap(),
            "value"
        );
    }

    #[test]
    fn a_declared_type_decides_how_json_text_is_typed() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("list"), "[\"a\"]").unwrap();
        let rd = ResultsDir::open(dir.path()).unwrap();
        let as_string = rd.read_results(&["list:string".parse().unwrap()]).unwrap();
        assert_eq!(as_string[0].1, ResultValue::String("[\"a\"]".into()));
        let as_array = rd.read_results(&["list:array".parse().unwrap()]).unwrap();
        assert_eq!(as_array[0].1, ResultValue::Array(vec!["a".into()]));
        let err = rd
            .read_results(&["list:object".parse().unwrap()])
            .unwrap_err();
        assert!(matches!(err, ResultsDirError::WrongType { .. }), "{err}");
        assert!("list:number".parse::<ResultSpec>().is_err());
    }

    #[test]
    fn binary_result_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("bin"), [0xff, 0xfe]).unwrap();
        let err = ResultsDir::open(dir.path())
            .unwrap()
            .read_results(&[])
            .unwrap_err();
        assert!(matches!(err, ResultsDirError::NotText { .. }));
    }
}

<#
.SYNOPSIS
  Build and sign the BYOD Agent MSI on a Windows runner (installer/build windows lands here).

.DESCRIPTION
  1. PyInstaller onedir from installer/byod-agent.spec (IT's configuration via BYOD_CONFIG_DIR),
     after re-checking the configuration; a customized build with a DEMO file in it fails.
  2. signtool signs every .exe/.dll/.pyd of the onedir (SHA-256, RFC 3161 timestamp), inside out.
  3. WiX v3 (candle/light) builds the per-user MSI from installer/windows/byod-agent.wxs plus the
     generated file list (installer/windows/wxs_files.py); signtool signs and verifies the MSI.
     Edition city (with -Config) or demo (without): two products, own UpgradeCode and name
     ("BYOD Agent" / "BYOD Agent (DEMO)"). -BuildNumber N (or BYOD_BUILD_NUMBER; city builds only)
     goes into the MSI ProductVersion via installer/build_versions.py (0.1.0 build 2 = 0.1.2), so
     every rebuild upgrades the installed one; the file is named with the display version
     (BYOD-Agent-0.1.0+city2-x64.msi).
  4. A CycloneDX SBOM goes beside it. Then `byod-admin release sign` signs the whole dist/.
  Secrets are parameters or environment variables, never files in the repository.
  Not run on this project's Linux machines: the same .wxs is built with wixl and signed with
  osslsigncode in tests/integration/test_msi.py.

.EXAMPLE
  $env:BYOD_PFX_PASSWORD = '...'   # from the CI secret store
  ./installer/windows/build.ps1 -Config city-config -PfxFile codesign.pfx -TimestampUrl $env:BYOD_TIMESTAMP_URL
#>
[CmdletBinding()]
param(
  [string]$Config = "",                                   # byod-admin build-config directory; empty = DEMO build
  [string]$Dist = "dist",
  [string]$PfxFile = $env:BYOD_PFX_FILE,                  # code-signing certificate (PFX)
  [string]$PfxPassword = $env:BYOD_PFX_PASSWORD,
  [string]$CertThumbprint = $env:BYOD_CERT_THUMBPRINT,    # or a certificate in the store / HSM-backed
  [string]$TimestampUrl = $env:BYOD_TIMESTAMP_URL,        # RFC 3161 time-stamping authority
  [string]$Python = "python",
  [string]$BuildNumber = $env:BYOD_BUILD_NUMBER,          # the city's build number 1..999 (city builds)
  [switch]$Release                                        # install from the hash-pinned lock first
)
$ErrorActionPreference = "Stop"
Set-StrictMode -Version Latest
$Root = (Resolve-Path "$PSScriptRoot/../..").Path
Set-Location $Root

function Invoke-Checked([string]$File, [string[]]$Arguments) {
  & $File @Arguments
  if ($LASTEXITCODE -ne 0) { throw "$File failed with exit code $LASTEXITCODE" }
}

if (-not $TimestampUrl) { throw "An RFC 3161 timestamp URL is required (-TimestampUrl or BYOD_TIMESTAMP_URL)." }
if (-not $PfxFile -and -not $CertThumbprint) { throw "No code-signing certificate (-PfxFile or -CertThumbprint)." }

$env:SOURCE_DATE_EPOCH = (git log -1 --format=%ct).Trim()
$env:PYTHONHASHSEED = "0"
$Version = (& $Python -c "import tomllib;print(tomllib.load(open('pyproject.toml','rb'))['project']['version'])").Trim()

if ($Release) {
  Invoke-Checked $Python @("-m", "pip", "install", "--require-hashes", "--no-deps", "-r", "installer/requirements-build.lock")
  Invoke-Checked $Python @("-m", "pip", "install", "--no-deps", ".")
}

$Stem = "BYOD-Agent-demo"
$Edition = "demo"
if ($Config) {
  $Edition = "city"
  $Config = (Resolve-Path $Config).Path
  Invoke-Checked $Python @("-c", "import sys; from pathlib import Path; from admin.buildconfig import check_config; check_config(Path(sys.argv[1]))", $Config)
  $env:BYOD_CONFIG_DIR = $Config
  $Stem = "BYOD-Agent"
} else {
  Write-Warning "No -Config: DEMO build ($Stem); it trusts only the DEMO key. Do not give it to staff."
  Remove-Item Env:BYOD_CONFIG_DIR -ErrorAction SilentlyContinue
}

# Version numbers: refused here (before the slow part) for a DEMO build or out of range.
$VersionArgs = @("installer/build_versions.py", $Version, "--edition", $Edition)
if ($BuildNumber) { $VersionArgs += @("--build-number", $BuildNumber) }
$Versions = (& $Python @VersionArgs)
if ($LASTEXITCODE -ne 0) { throw "build_versions.py refused the build number (see above)" }
$Versions = $Versions | ConvertFrom-Json
$MsiVersion = $Versions.msi
$DisplayVersion = $Versions.display

# 1. PyInstaller onedir
$Work = Join-Path $Root "build/installer/windows"
Invoke-Checked $Python @("-m", "PyInstaller", "--noconfirm", "--clean", "--workpath", "$Work/work", "--distpath", "$Work/dist", "installer/byod-agent.spec")
$App = Join-Path $Work "dist/byod-agent"
if ($Config) {
  $found = & $Python -c "import sys; from pathlib import Path; from admin.buildconfig import demo_findings; f = demo_findings(Path(sys.argv[1])); print('; '.join(f)); sys.exit(1 if f else 0)" "$App/_internal/resources"
  if ($LASTEXITCODE -ne 0) { throw "Refusing to build: this customized installer would ship DEMO files: $found" }
}

# 2. Sign every executable file, then (3) the MSI. signtool takes many files per call.
function Invoke-Sign([string[]]$Files) {
  $args = @("sign", "/fd", "sha256", "/tr", $TimestampUrl, "/td", "sha256", "/d", "BYOD Agent")
  if ($PfxFile) { $args += @("/f", $PfxFile, "/p", $PfxPassword) } else { $args += @("/sha1", $CertThumbprint) }
  for ($i = 0; $i -lt $Files.Count; $i += 50) {
    $batch = $Files[$i..([Math]::Min($i + 49, $Files.Count - 1))]
    Invoke-Checked "signtool" ($args + $batch)
  }
}
$binaries = Get-ChildItem -Path $App -Recurse -File -Include *.exe, *.dll, *.pyd | ForEach-Object FullName
Invoke-Sign $binaries

New-Item -ItemType Directory -Force -Path $Dist | Out-Null
$Dist = (Resolve-Path $Dist).Path
& $Python installer/windows/wxs_files.py --edition $Edition $App | Set-Content -Encoding utf8 "$Work/files.wxs"
if ($LASTEXITCODE -ne 0) { throw "wxs_files.py failed with exit code $LASTEXITCODE" }
Invoke-Checked "candle.exe" @("-nologo", "-arch", "x64", "-dVersion=$MsiVersion", "-dDisplayVersion=$DisplayVersion", "-dEdition=$Edition", "-dSourceDir=$App", "-out", "$Work/", "installer/windows/byod-agent.wxs", "$Work/files.wxs")
$Msi = Join-Path $Dist "$Stem-$DisplayVersion-x64.msi"
Invoke-Checked "light.exe" @("-nologo", "-o", $Msi, "$Work/byod-agent.wixobj", "$Work/files.wixobj")
Invoke-Sign @($Msi)
Invoke-Checked "signtool" @("verify", "/pa", "/v", $Msi)

# 4. SBOM
& $Python -c "import sys; from admin import sbom; sys.stdout.buffer.write(sbom.sbom_json(epoch=int(sys.argv[1])))" $env:SOURCE_DATE_EPOCH | Set-Content -Encoding utf8NoBOM (Join-Path $Dist "$Stem-$DisplayVersion-windows.cdx.json")
Write-Host "Built $Msi"

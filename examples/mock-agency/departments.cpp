#include "examples/mock-agency/departments.hpp"

#include <algorithm>
#include <array>
#include <cstdint>
#include <optional>
#include <string>

namespace wf::mock {
namespace {

using nlohmann::json;

// Ages and years of service are counted at this year, the examples' year, not the wall clock,
// so that every answer is a function of the request.
constexpr int kReferenceYear = 2026;

uint64_t Fnv1a(const std::string& text) {
  uint64_t hash = 0xcbf29ce484222325ULL;
  for (unsigned char c : text) {
    hash ^= c;
    hash *= 0x100000001b3ULL;
  }
  return hash;
}

bool AllDigits(const std::string& text, size_t length) {
  return text.size() == length &&
         std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
}

bool IsDate(const std::string& text) {
  return text.size() == 10 && text[4] == '-' && text[7] == '-' && AllDigits(text.substr(0, 4), 4) &&
         AllDigits(text.substr(5, 2), 2) && AllDigits(text.substr(8, 2), 2);
}

std::string Serial(int64_t value, size_t width) {
  std::string text = std::to_string(value);
  if (text.size() < width) text.insert(0, width - text.size(), '0');
  return text;
}

Answer Refuse(const std::string& field, const std::string& message) {
  return {422, {{"error", message}, {"field", field}}};
}

// The string at `path` (e.g. "child.birth_date"), or nullopt.
std::optional<std::string> StringAt(const json& request, const std::string& path) {
  const json* node = &request;
  size_t start = 0;
  while (true) {
    const size_t dot = path.find('.', start);
    const std::string name = path.substr(start, dot == std::string::npos ? dot : dot - start);
    if (!node->is_object() || !node->contains(name)) return std::nullopt;
    node = &(*node)[name];
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  if (!node->is_string()) return std::nullopt;
  return node->get<std::string>();
}

// Reads a field of `length` digits into `out`; the refusal to answer when it is not one.
std::optional<Answer> NeedDigits(const json& request, const std::string& path, size_t length,
                                 std::string& out) {
  auto value = StringAt(request, path);
  if (!value) return Refuse(path, path + " is required");
  if (!AllDigits(*value, length)) {
    return Refuse(path, path + " must be " + std::to_string(length) + " digits");
  }
  out = *value;
  return std::nullopt;
}

std::optional<Answer> NeedDate(const json& request, const std::string& path, std::string& out) {
  auto value = StringAt(request, path);
  if (!value) return Refuse(path, path + " is required");
  if (!IsDate(*value)) return Refuse(path, path + " must be a date YYYY-MM-DD");
  out = *value;
  return std::nullopt;
}

json ValueOr(const json& request, const char* field, json fallback) {
  return request.contains(field) ? request[field] : fallback;
}

template <size_t N>
const char* Pick(const std::array<const char*, N>& items, uint64_t hash) {
  return items[hash % N];
}

// Province names by the first three digits of a citizen id (the 2025 names where provinces
// were merged).
std::string ProvinceOfCitizen(const std::string& code) {
  static const std::map<std::string, std::string> kNames = {
      {"001", "Thành phố Hà Nội"}, {"031", "Thành phố Hải Phòng"},
      {"046", "Thành phố Huế"},    {"048", "Thành phố Đà Nẵng"},
      {"072", "tỉnh Tây Ninh"},    {"074", "Thành phố Hồ Chí Minh"},
      {"075", "tỉnh Đồng Nai"},    {"079", "Thành phố Hồ Chí Minh"},
      {"080", "tỉnh Tây Ninh"},    {"092", "Thành phố Cần Thơ"},
  };
  auto found = kNames.find(code);
  return found != kNames.end() ? found->second : "tỉnh mã " + code;
}

// Province names by the first two digits of an enterprise (tax) code.
std::string ProvinceOfEnterprise(const std::string& code) {
  static const std::map<std::string, std::string> kNames = {
      {"01", "Thành phố Hà Nội"}, {"02", "Thành phố Hải Phòng"}, {"03", "Thành phố Hồ Chí Minh"},
      {"11", "tỉnh Tây Ninh"},    {"39", "tỉnh Tây Ninh"},
  };
  auto found = kNames.find(code);
  return found != kNames.end() ? found->second : "tỉnh mã " + code;
}

// What a 12-digit citizen id says by itself: province of registration (digits 1-3), sex and
// century (digit 4: 0/1 male/female born 1900-1999, 2/3 2000-2099, ...), year of birth
// (digits 5-6) and a serial (digits 7-12).
struct Citizen {
  std::string id;
  std::string province;
  bool female = false;
  int birth_year = 1900;
  int64_t serial = 0;
  uint64_t hash = 0;

  int age() const { return kReferenceYear - birth_year; }
};

Citizen ReadCitizen(const std::string& id) {
  Citizen citizen;
  citizen.id = id;
  citizen.province = ProvinceOfCitizen(id.substr(0, 3));
  const int century_digit = id[3] - '0';
  citizen.female = century_digit % 2 == 1;
  citizen.birth_year = 1900 + 100 * (century_digit / 2) + std::stoi(id.substr(4, 2));
  citizen.serial = std::stoll(id.substr(6));
  citizen.hash = Fnv1a(id);
  return citizen;
}

std::string FullName(uint64_t hash, bool female) {
  static constexpr std::array<const char*, 12> kFamily = {
      "Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Võ", "Đặng", "Bùi", "Đỗ", "Ngô"};
  static constexpr std::array<const char*, 5> kMiddleMale = {"Văn", "Minh", "Quốc", "Đức", "Hữu"};
  static constexpr std::array<const char*, 5> kMiddleFemale = {"Thị", "Ngọc", "Thu", "Thanh", "Mỹ"};
  static constexpr std::array<const char*, 8> kGivenMale = {"Hùng", "Dũng", "Tuấn", "Khang",
                                                            "Phúc", "Long", "Nam",  "Bảo"};
  static constexpr std::array<const char*, 8> kGivenFemale = {"Lan", "Hương", "Mai",   "Linh",
                                                              "Hà",  "Trang", "Nhung", "Thảo"};
  std::string name = Pick(kFamily, hash);
  name += ' ';
  name += female ? Pick(kMiddleFemale, hash >> 8) : Pick(kMiddleMale, hash >> 8);
  name += ' ';
  name += female ? Pick(kGivenFemale, hash >> 16) : Pick(kGivenMale, hash >> 16);
  return name;
}

std::string Address(uint64_t hash, const std::string& province) {
  static constexpr std::array<const char*, 6> kStreets = {
      "đường Cách Mạng Tháng Tám", "đường 30/4",   "đường Trần Hưng Đạo",
      "đường Nguyễn Trãi",         "đường Lê Lợi", "đường Hùng Vương"};
  return "Số " + std::to_string(1 + hash % 199) + ", " + Pick(kStreets, hash >> 24) + ", khu phố " +
         std::to_string(1 + (hash >> 32) % 9) + ", " + province;
}

std::string Date(int year, uint64_t hash) {
  return std::to_string(year) + "-" + Serial(static_cast<int64_t>(1 + hash % 12), 2) + "-" +
         Serial(static_cast<int64_t>(1 + (hash / 12) % 28), 2);
}

// --- procedure-portal: notices to the applicant. The recipient is a citizen id.

Answer PortalNotice(const json& request, Registry& registry, const char* prefix,
                    const char* state) {
  std::string citizen_id;
  if (auto refusal = NeedDigits(request, "citizen_id", 12, citizen_id)) return *refusal;
  json answer = {{"status", state},
                 {"notice_no", std::string(prefix) + "-" + Serial(registry.Next(prefix), 6)},
                 {"recipient", citizen_id},
                 {"channels", ValueOr(request, "channels", json::array({"portal"}))}};
  return {200, answer};
}

Answer SendAppointment(const json& request, Registry& registry) {
  std::string citizen_id;
  if (auto refusal = NeedDigits(request, "citizen_id", 12, citizen_id)) return *refusal;
  return {200,
          {{"status", "sent"},
           {"receipt_no", "HS-" + Serial(registry.Next("HS"), 6)},
           {"recipient", citizen_id},
           {"procedure", ValueOr(request, "procedure", nullptr)},
           {"channels", ValueOr(request, "channels", json::array({"portal"}))}}};
}
Answer RequestSupplement(const json& r, Registry& g) { return PortalNotice(r, g, "BS", "sent"); }
Answer NotifyApplicant(const json& r, Registry& g) { return PortalNotice(r, g, "TB", "delivered"); }
Answer NotifyRefusal(const json& r, Registry& g) { return PortalNotice(r, g, "TC", "delivered"); }
Answer ReturnResult(const json& r, Registry& g) { return PortalNotice(r, g, "KQ", "delivered"); }

// --- population-db

Answer GetCitizen(const json& request, Registry& registry) {
  std::string id;
  if (auto refusal = NeedDigits(request, "citizen_id", 12, id)) return *refusal;
  const Citizen citizen = ReadCitizen(id);
  return {200,
          {{"citizen_id", id},
           {"full_name", FullName(citizen.hash, citizen.female)},
           {"sex", citizen.female ? "female" : "male"},
           {"birth_date", Date(citizen.birth_year, citizen.hash >> 40)},
           {"place_of_origin", citizen.province},
           {"permanent_address", Address(citizen.hash, citizen.province)},
           {"nationality", "Việt Nam"},
           {"ethnicity", "Kinh"},
           {"status", registry.IsDeceased(id) ? "deceased" : "alive"}}};
}

// --- civil-status-db

Answer RegisterBirth(const json& request, Registry& registry) {
  std::string mother, birth_date;
  if (auto refusal = NeedDigits(request, "mother_citizen_id", 12, mother)) return *refusal;
  if (auto refusal = NeedDate(request, "child.birth_date", birth_date)) return *refusal;
  auto full_name = StringAt(request, "child.full_name");
  if (!full_name || full_name->empty())
    return Refuse("child.full_name", "child.full_name is required");
  const int year = std::stoi(birth_date.substr(0, 4));
  const bool female = StringAt(request, "child.sex").value_or("") == "female";
  // The child's personal id: the mother's province, the sex and century digit, the year, and
  // the next serial of that block.
  const std::string block = mother.substr(0, 3) +
                            std::to_string(2 * ((year - 1900) / 100) + (female ? 1 : 0)) +
                            Serial(year % 100, 2);
  const std::string book = "KS-" + std::to_string(year);
  return {200,
          {{"certificate_no", book + "-" + Serial(registry.Next(book), 6)},
           {"personal_id", block + Serial(registry.Next("PID-" + block), 6)},
           {"full_name", *full_name},
           {"birth_date", birth_date},
           {"status", "registered"}}};
}

Answer RegisterDeath(const json& request, Registry& registry) {
  std::string id, date_of_death;
  if (auto refusal = NeedDigits(request, "citizen_id", 12, id)) return *refusal;
  if (auto refusal = NeedDate(request, "date_of_death", date_of_death)) return *refusal;
  const std::string book = "KT-" + date_of_death.substr(0, 4);
  registry.RecordDeath(id);
  return {200,
          {{"certificate_no", book + "-" + Serial(registry.Next(book), 6)},
           {"citizen_id", id},
           {"full_name", ValueOr(request, "full_name", nullptr)},
           {"date_of_death", date_of_death},
           {"status", "registered"}}};
}

// --- police-residence

Answer RegisterNewborn(const json& request, Registry& registry) {
  std::string personal_id;
  if (auto refusal = NeedDigits(request, "personal_id", 12, personal_id)) return *refusal;
  return {200,
          {{"status", "registered"},
           {"registration_no", "DKTT-" + Serial(registry.Next("DKTT"), 6)},
           {"personal_id", personal_id},
           {"address", ValueOr(request, "address", nullptr)}}};
}

Answer DeregisterResidence(const json& request, Registry& registry) {
  std::string id;
  if (auto refusal = NeedDigits(request, "citizen_id", 12, id)) return *refusal;
  return {200,
          {{"status", "deregistered"},
           {"registration_no", "XTT-" + Serial(registry.Next("XTT"), 6)},
           {"citizen_id", id},
           {"reason", ValueOr(request, "reason", nullptr)}}};
}

// --- social-insurance

Answer IssueCard(const json& request, Registry&) {
  std::string personal_id;
  if (auto refusal = NeedDigits(request, "personal_id", 12, personal_id)) return *refusal;
  // A child's card: object code TE, benefit level 1, the province's two digits, and the social
  // insurance number (the last 10 digits of the personal id).
  const std::string social_insurance_no = personal_id.substr(2);
  json answer = {
      {"card_no", "TE1" + personal_id.substr(1, 2) + social_insurance_no},
      {"social_insurance_no", social_insurance_no},
      {"personal_id", personal_id},
      {"full_name", ValueOr(request, "full_name", nullptr)},
      {"benefit_level", 1},
      {"initial_hospital", "Trung tâm Y tế " + ProvinceOfCitizen(personal_id.substr(0, 3))},
      {"status", "issued"}};
  if (auto birth_date = StringAt(request, "birth_date"); birth_date && IsDate(*birth_date)) {
    answer["valid_from"] = *birth_date;
    answer["valid_until"] =
        ValueOr(request, "valid_until",
                std::to_string(std::stoi(birth_date->substr(0, 4)) + 6) + birth_date->substr(4));
  }
  return {200, answer};
}

Answer GetInsuranceHistory(const json& request, Registry&) {
  std::string id;
  if (auto refusal = NeedDigits(request, "citizen_id", 12, id)) return *refusal;
  const Citizen citizen = ReadCitizen(id);
  // Months of compulsory contributions: a share of the working years since 18, set by the
  // serial; 180 months (15 years) and the retirement age make a pensioner.
  const int64_t working_months = std::max(0, citizen.age() - 18) * 12;
  const int64_t months = std::min(working_months, citizen.serial % 421);
  const bool pensioner = months >= 180 && citizen.age() >= (citizen.female ? 60 : 62);
  const bool monthly_benefit = !pensioner && citizen.age() >= 55 && citizen.serial % 10 == 5;
  return {200,
          {{"citizen_id", id},
           {"social_insurance_no", id.substr(2)},
           {"compulsory_months", months},
           {"pensioner", pensioner},
           {"monthly_benefit", monthly_benefit}}};
}

Answer GrantSurvivorBenefits(const json& request, Registry& registry) {
  std::string id, beneficiary;
  if (auto refusal = NeedDigits(request, "citizen_id", 12, id)) return *refusal;
  if (auto refusal = NeedDigits(request, "beneficiary_citizen_id", 12, beneficiary)) {
    return *refusal;
  }
  return {200,
          {{"status", "approved"},
           {"decision_no", "QD-BHXH-" + Serial(registry.Next("QD-BHXH"), 6)},
           {"citizen_id", id},
           {"beneficiary_citizen_id", beneficiary},
           {"amount_vnd", ValueOr(request, "amount_vnd", nullptr)}}};
}

// --- dolisa

Answer LookupBeneficiary(const json& request, Registry&) {
  std::string id;
  if (auto refusal = NeedDigits(request, "citizen_id", 12, id)) return *refusal;
  const Citizen citizen = ReadCitizen(id);
  json category = nullptr;
  if (citizen.serial % 7 == 0) {
    category = "person_with_merit";
  } else if (citizen.age() >= 80 || citizen.serial % 7 == 1) {
    category = "social_welfare";  // e.g. the social pension from 80 (Decree 20/2021/ND-CP)
  }
  return {200, {{"citizen_id", id}, {"category", category}}};
}

Answer GrantFuneralSupport(const json& request, Registry& registry) {
  std::string id;
  if (auto refusal = NeedDigits(request, "citizen_id", 12, id)) return *refusal;
  return {200,
          {{"status", "approved"},
           {"decision_no", "QD-TCXH-" + Serial(registry.Next("QD-TCXH"), 6)},
           {"citizen_id", id},
           {"category", ValueOr(request, "category", nullptr)},
           {"amount_vnd", ValueOr(request, "amount_vnd", nullptr)}}};
}

// --- business-registry and tax-office. Codes are issued in sequence, so the mock dates a
// company by its code: the 8 digits after the province make the founding year
// 2000 + (sequence / 100000) % 26. A code ending in 0000 is dissolved, in 9999 suspended.

struct Enterprise {
  std::string code;
  int64_t sequence = 0;
  int founded_year = 2000;
  std::string founded_on;
  std::string status;
};

Enterprise ReadEnterprise(const std::string& code) {
  Enterprise enterprise;
  enterprise.code = code;
  enterprise.sequence = std::stoll(code.substr(2));
  enterprise.founded_year = 2000 + static_cast<int>((enterprise.sequence / 100000) % 26);
  enterprise.founded_on = std::to_string(enterprise.founded_year) + "-" +
                          Serial(1 + enterprise.sequence % 12, 2) + "-" +
                          Serial(1 + (enterprise.sequence / 12) % 28, 2);
  const std::string tail = code.substr(6);
  enterprise.status = tail == "0000" ? "dissolved" : tail == "9999" ? "suspended" : "active";
  return enterprise;
}

Answer LookupEnterprise(const json& request, Registry&) {
  std::string code;
  if (auto refusal = NeedDigits(request, "enterprise_code", 10, code)) return *refusal;
  const Enterprise enterprise = ReadEnterprise(code);
  static constexpr std::array<const char*, 5> kTrades = {"Công nghệ", "Thương mại", "Sản xuất",
                                                         "Nông nghiệp", "Dịch vụ"};
  static constexpr std::array<const char*, 6> kNames = {"Phương Nam", "Minh Phát", "An Khang",
                                                        "Sao Việt",   "Hòa Bình",  "Tân Tiến"};
  const uint64_t hash = Fnv1a(code);
  const std::string province = ProvinceOfEnterprise(code.substr(0, 2));
  return {
      200,
      {{"enterprise_code", code},
       {"name", std::string("Công ty TNHH ") + Pick(kTrades, hash) + " " + Pick(kNames, hash >> 8)},
       {"status", enterprise.status},
       {"founded_on", enterprise.founded_on},
       {"legal_form", "limited_liability_company"},
       {"head_office", Address(hash, province)},
       {"legal_representative", FullName(hash >> 3, (hash & 1) == 1)}}};
}

Answer GetTaxStatus(const json& request, Registry&) {
  std::string code;
  if (auto refusal = NeedDigits(request, "tax_code", 10, code)) return *refusal;
  const Enterprise enterprise = ReadEnterprise(code);
  return {200,
          {{"tax_code", code},
           {"status", enterprise.status},
           {"compliant", enterprise.status == "active"},
           {"outstanding_vnd", 0},
           {"tax_authority", "Thuế " + ProvinceOfEnterprise(code.substr(0, 2))}}};
}

Answer GetRevenue(const json& request, Registry&) {
  std::string code;
  if (auto refusal = NeedDigits(request, "tax_code", 10, code)) return *refusal;
  if (!request.contains("year") || !request["year"].is_number_integer()) {
    return Refuse("year", "year is required (an integer)");
  }
  const int year = request["year"].get<int>();
  if (year >= kReferenceYear)
    return Refuse("year", "no tax return filed for " + std::to_string(year));
  const Enterprise enterprise = ReadEnterprise(code);
  // A full-grown company turns over (sequence % 900 + 100) hundred million VND a year; a young
  // one a tenth of that per year of age; before it was founded, nothing.
  const int64_t full = (enterprise.sequence % 900 + 100) * 100'000'000LL;
  const int age = year - enterprise.founded_year + 1;
  const int64_t total = age <= 0 ? 0 : full * std::min(age, 10) / 10;
  return {200,
          {{"tax_code", code},
           {"year", year},
           {"total_revenue_vnd", total},
           {"source", "annual corporate income tax return"}}};
}

// --- payment-gateway

Answer RequestPayment(const json& request, Registry& registry) {
  if (!request.contains("amount_vnd") || !request["amount_vnd"].is_number() ||
      request["amount_vnd"].get<double>() <= 0) {
    return Refuse("amount_vnd", "amount_vnd must be a positive number");
  }
  return {200,
          {{"status", "paid"},
           {"transaction_no", "GD" + Serial(registry.Next("GD"), 8)},
           {"amount_vnd", request["amount_vnd"]},
           {"payer_enterprise_code", ValueOr(request, "payer_enterprise_code", nullptr)},
           {"reference", ValueOr(request, "reference", nullptr)}}};
}

// --- dost-records and most-portal

Answer IssueCertificate(const json& request, Registry& registry) {
  const std::string kind = StringAt(request, "kind").value_or("");
  std::string book;
  if (kind == "st_enterprise") {
    book = "GCN-KHCN";
  } else if (kind == "technology_transfer_registration") {
    book = "GCN-CGCN";
  } else {
    return Refuse("kind", "kind must be st_enterprise or technology_transfer_registration");
  }
  return {200,
          {{"certificate_no", book + "-" + Serial(registry.Next(book), 6)},
           {"kind", kind},
           {"status", "issued"}}};
}

Answer ForwardDossier(const json& request, Registry& registry) {
  auto contract = StringAt(request, "contract_number");
  if (!contract || contract->empty()) {
    return Refuse("contract_number", "contract_number is required");
  }
  return {200,
          {{"status", "received"},
           {"dossier_no", "BKHCN-" + Serial(registry.Next("BKHCN"), 6)},
           {"contract_number", *contract}}};
}

using Handler = Answer (*)(const json&, Registry&);

const std::map<std::string, std::map<std::string, Handler>>& Handlers() {
  static const std::map<std::string, std::map<std::string, Handler>> kHandlers = {
      {"procedure-portal",
       {{"send_appointment", SendAppointment},
        {"request_supplement", RequestSupplement},
        {"notify_applicant", NotifyApplicant},
        {"notify_refusal", NotifyRefusal},
        {"return_result", ReturnResult}}},
      {"population-db", {{"get_citizen", GetCitizen}}},
      {"civil-status-db", {{"register_birth", RegisterBirth}, {"register_death", RegisterDeath}}},
      {"police-residence",
       {{"register_newborn", RegisterNewborn}, {"deregister_residence", DeregisterResidence}}},
      {"social-insurance",
       {{"issue_card", IssueCard},
        {"get_insurance_history", GetInsuranceHistory},
        {"grant_survivor_benefits", GrantSurvivorBenefits}}},
      {"dolisa",
       {{"lookup_beneficiary", LookupBeneficiary}, {"grant_funeral_support", GrantFuneralSupport}}},
      {"business-registry", {{"lookup_enterprise", LookupEnterprise}}},
      {"tax-office", {{"get_tax_status", GetTaxStatus}, {"get_revenue", GetRevenue}}},
      {"payment-gateway", {{"request_payment", RequestPayment}}},
      {"dost-records", {{"issue_certificate", IssueCertificate}}},
      {"most-portal", {{"forward_dossier", ForwardDossier}}},
  };
  return kHandlers;
}

}  // namespace

const std::map<std::string, std::vector<std::string>>& Catalogue() {
  static const std::map<std::string, std::vector<std::string>> kCatalogue = [] {
    std::map<std::string, std::vector<std::string>> catalogue;
    for (const auto& [department, operations] : Handlers()) {
      for (const auto& [operation, handler] : operations) {
        catalogue[department].push_back(operation);
      }
    }
    return catalogue;
  }();
  return kCatalogue;
}

bool IsKnownDepartment(const std::string& department) { return Handlers().count(department) > 0; }

bool IsKnownOperation(const std::string& department, const std::string& operation) {
  auto found = Handlers().find(department);
  return found != Handlers().end() && found->second.count(operation) > 0;
}

Answer AnswerCall(const std::string& department, const std::string& operation, const json& request,
                  Registry& registry) {
  if (!IsKnownOperation(department, operation)) {
    return {404, {{"error", "no operation " + department + "/" + operation}}};
  }
  return Handlers().at(department).at(operation)(request, registry);
}

}  // namespace wf::mock

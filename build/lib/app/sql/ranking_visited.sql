-- /*VISITED*/ fragment: doors visited in the campaign's current round (highest number), per district.
SELECT dd.district_code, count(DISTINCT v.address_id) AS n
FROM visit v
JOIN door_district dd ON dd.address_id = v.address_id
WHERE v.campaign_id = :campaign_id
  AND v.round_id = (SELECT cr.id FROM canvass_round cr WHERE cr.campaign_id = :campaign_id
                    ORDER BY cr.number DESC LIMIT 1)
GROUP BY dd.district_code
